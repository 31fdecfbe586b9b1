/// The program's version, written into trace headers and printed by `--version`.
public enum DesgdVersion {
    public static let current = "0.7.0"
}
