public enum _StorePlaceholder {}
