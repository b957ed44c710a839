/// The version of CareLedger this binary was built from (semantic versioning; `CHANGELOG.md` lists
/// what each version changed). `careledger --version`, `/openapi.json` and `/fhir/metadata` name it.
public enum Release {
    public static let version = "0.4.0"
}
