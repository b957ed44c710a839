public enum _ServerPlaceholder {}
