import ContractKit
import LedgerCore
import Standards

/// The answer to "is this pack genuine and saleable?", in CareLedger's stable outcome codes and in
/// the terms of the EU FMD (EMVS alert codes, NMVS return codes) and the US DSCSA Verification Router
/// Service (`verified`, `verificationFailureReason`, `additionalInfo`). Checks run in EMVS order:
/// product code, serial, batch, expiry date, recall, pack state, expiry, chain of custody.
public struct PackVerification: Sendable {
    public enum Outcome: String, Sendable, CaseIterable {
        case verified
        case unknownProduct = "unknown_product"
        case unknownSerial = "unknown_serial"
        case batchMismatch = "batch_mismatch"
        case expiryMismatch = "expiry_mismatch"
        case expired, recalled
        case decommissioned = "already_decommissioned"
        case locked = "pack_locked"
        case suspect
    }

    public let outcome: Outcome
    /// The pack state when it is not active (dispensed, destroyed, stolen, …).
    public let state: String?
    public let gtin: String?
    public let productName: String?
    public let lot: String?
    public let expiry: GS1Date?
    public let mah: String?
    /// The current holder (through the outermost container).
    public let holder: String?
    public let packKey: String?
    public let verifier: String?
    /// The counterfeit/alert rule this outcome raises, if any.
    public let rule: String?
    public let detail: String?
    public let dispensedAtHeight: UInt64?

    /// EU Hub alert code (A2, A3, A7, A52, A68) where one exists.
    public var emvsAlert: String? {
        switch outcome {
        case .unknownSerial: return detail?.contains("batch not found") == true ? "A2" : "A3"
        case .batchMismatch: return "A68"
        case .expiryMismatch: return "A52"
        case .decommissioned: return "A7"
        default: return nil
        }
    }

    /// NMVS return code.
    public var nmvsReturnCode: String {
        switch outcome {
        case .verified: return "NMVS_SUCCESS"
        case .unknownProduct: return "NMVS_NC_PC_01"
        case .unknownSerial: return emvsAlert == "A2" ? "NMVS_FE_LOT_03" : "NMVS_NC_PC_02"
        case .batchMismatch: return "NMVS_FE_LOT_13"
        case .expiryMismatch: return "NMVS_FE_LOT_12"
        case .decommissioned, .recalled, .expired, .locked, .suspect: return "NMVS_SUCCESS"
        }
    }

    /// DSCSA VRS response: `verified`, `verificationFailureReason`, `additionalInfo`.
    public var vrs: JSONValue {
        var o: [String: JSONValue] = [:]
        switch outcome {
        case .verified: o["verified"] = .bool(true)
        case .unknownProduct, .unknownSerial:
            o["verified"] = .bool(false)
            o["verificationFailureReason"] = .string("No_match_GTIN_Serial")
        case .batchMismatch:
            o["verified"] = .bool(false)
            o["verificationFailureReason"] = .string("No_match_GTIN_Serial_Lot")
        case .expiryMismatch:
            o["verified"] = .bool(false)
            o["verificationFailureReason"] = .string("No_match_GTIN_Serial_Expiry")
        case .recalled:
            o["verified"] = .bool(true)
            o["additionalInfo"] = .string("Recalled")
        case .expired:
            o["verified"] = .bool(true)
            o["additionalInfo"] = .string("Expired")
        case .suspect, .locked:
            o["verified"] = .bool(true)
            o["additionalInfo"] = .string("Suspect")
        case .decommissioned:
            o["verified"] = .bool(false)
            o["verificationFailureReason"] = .string("Not_for_re-distribution")
        }
        return .object(o)
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "outcome": .string(outcome.rawValue), "verified": .bool(outcome == .verified),
            "emvs": .object(["returnCode": .string(nmvsReturnCode), "alert": emvsAlert.map { .string($0) } ?? .null]), "vrs": vrs,
        ]
        if let state { o["state"] = .string(state) }
        if let gtin { o["gtin"] = .string(gtin) }
        if let productName { o["product"] = .string(productName) }
        if let lot { o["lot"] = .string(lot) }
        if let expiry { o["expiry"] = .string(expiry.iso) }
        if let rule { o["alert"] = .string(rule) }
        if let detail { o["detail"] = .string(detail) }
        if let dispensedAtHeight {
            o["dispensed"] = .bool(true)
            o["height"] = .int(Int64(dispensedAtHeight))
        }
        return .object(o)
    }

    /// The same verification after the pack was dispensed at `height`.
    public func dispensed(height: UInt64) -> PackVerification {
        PackVerification(
            outcome: outcome, state: "dispensed", gtin: gtin, productName: productName, lot: lot, expiry: expiry, mah: mah, holder: holder,
            packKey: packKey, verifier: verifier, rule: rule, detail: detail, dispensedAtHeight: height)
    }

    /// Runs the checks over `state` (a reader of the latest committed state).
    public static func check(
        scan: GS1ElementString, keys: SupplyKeys, today: GS1Date, verifier: String?, verifierRoles: Set<SupplyRole>,
        state: (String) throws(LedgerError) -> JSONValue?
    ) throws(LedgerError) -> PackVerification {
        guard let gtin = scan.gtin, let serial = scan.serial else {
            throw LedgerError("bad_scan", "a pack scan needs a GTIN (01) and a serial number (21)")
        }
        let packKey = keys.pack(gtin: gtin, serial: serial)
        func result(
            _ outcome: Outcome, state: String? = nil, rule: String? = nil, detail: String? = nil, product: JSONValue? = nil, holder: String? = nil
        ) -> PackVerification {
            PackVerification(
                outcome: outcome, state: state, gtin: gtin, productName: product?["name"]?.stringValue, lot: scan.lot, expiry: scan.expiry,
                mah: product?["mah"]?.stringValue, holder: holder, packKey: packKey, verifier: verifier, rule: rule, detail: detail,
                dispensedAtHeight: nil)
        }
        guard let product = try state(SupplyState.product(gtin)) else {
            return result(.unknownProduct, rule: "unknown_product", detail: "GTIN \(gtin) is not a registered product")
        }
        guard let json = try state(SupplyItem.stateKey(packKey)) else {
            let lotKnown = try scan.lot.map { lot throws(LedgerError) in try state(SupplyState.lot(keys.lot(gtin: gtin, lot: lot))) != nil } ?? false
            return result(
                .unknownSerial, rule: "never_commissioned",
                detail: lotKnown ? "serial number never commissioned" : "serial number never commissioned; batch not found", product: product)
        }
        let item = try SupplyItem(json: json)
        let top = try item.containers { k throws(LedgerError) in try state(SupplyItem.stateKey(k)).map(SupplyItem.init(json:)) }.last?.item ?? item
        let holder = top.owner
        if let lot = scan.lot, keys.lot(gtin: gtin, lot: lot) != item.lot {
            return result(.batchMismatch, rule: "batch_mismatch", detail: "the batch differs from the one the pack was commissioned with", product: product, holder: holder)
        }
        if let expiry = scan.expiry, expiry.iso != item.expiry {
            return result(.expiryMismatch, rule: "expiry_mismatch", detail: "the expiry date differs from the recorded one", product: product, holder: holder)
        }
        if let lot = item.lot, let record = try state(SupplyState.lot(lot)), record["recalled"]?.boolValue == true {
            return result(.recalled, rule: "recalled_pack_scanned", detail: record["reason"]?.stringValue, product: product, holder: holder)
        }
        if item.status == .locked {
            return result(.locked, state: item.status.rawValue, rule: "pack_locked", product: product, holder: holder)
        }
        if item.status != .active {
            // Who decommissioned it is for supply-chain parties only.
            let elsewhere = !verifierRoles.isEmpty && verifier != nil && item.statusBy != nil && item.statusBy != verifier
            return result(
                .decommissioned, state: item.status.rawValue, rule: elsewhere ? "scanned_after_decommission" : "already_decommissioned",
                detail: elsewhere ? "the pack was \(item.status.rawValue) by \(item.statusBy!)" : nil, product: product, holder: holder)
        }
        if let expiry = item.expiry, expiry < today.iso {
            return result(.expired, rule: "expired", detail: "expired on \(expiry)", product: product, holder: holder)
        }
        if let verifier, !verifierRoles.isDisjoint(with: SupplyRole.holders), holder != verifier, top.destination != verifier {
            return result(
                .suspect, rule: "custody_mismatch",
                detail: top.custody == .inTransit ? "the pack is in transit to another party" : "the chain of custody places the pack with another party",
                product: product, holder: holder)
        }
        return result(.verified, product: product, holder: holder)
    }
}
