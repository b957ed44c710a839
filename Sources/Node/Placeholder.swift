public enum _NodePlaceholder {}
