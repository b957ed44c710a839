"""`careledger claim adjudicate` against an independent computation of the base rule (docs/claims.md),
written here from the rule's text alone, on seeded random policies and claims; the published policy
JSON Schema (docs/schemas/claims-policy.schema.json) checked with PyPI's `jsonschema` against the same
policies CareLedger accepts and refuses; and the example files the docs use."""
import glob
import json
import os
import random
import subprocess
from decimal import Decimal

import jsonschema
import pytest

from careledger_node import BINARY

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SCHEMA = json.load(open(os.path.join(ROOT, "docs", "schemas", "claims-policy.schema.json")))
CPT = "http://www.ama-assn.org/go/cpt"
PATIENTS = ["did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG",
            "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf"]


def adjudicate(tmp_path, policy, claims):
    (tmp_path / "policy.json").write_text(json.dumps(policy))
    (tmp_path / "claims.json").write_text(json.dumps(claims))
    return subprocess.run([BINARY, "claim", "adjudicate", "--policy", str(tmp_path / "policy.json"), str(tmp_path / "claims.json"), "--json"],
                          capture_output=True, text=True)


def oracle(policy, claims):
    """The base rule, from its text: lines in date-of-service order (ties: claim order, then sequence);
    membership 31, coverage 26/27, timely filing 29, covered service 96, prior authorisation 197,
    duplicate 18; then allowed, deductible, copay, coinsurance (half up), the out-of-pocket cap taken
    from coinsurance, copay, deductible in that order."""
    fees = {(s["system"], s["code"]): s for s in policy["services"]}
    met = {}
    seen = set()
    out = {}
    lines = []
    for ci, claim in enumerate(claims):
        for item in claim["item"]:
            lines.append((item["servicedDate"], ci, item["sequence"], claim, item))
    lines.sort(key=lambda l: (l[0], l[1], l[2]))
    for date, ci, seq, claim, item in lines:
        patient = claim["patient"]["identifier"]["value"]
        submitted = int(Decimal(str(item["net"]["value"])) * 100)
        coding = item["productOrService"]["coding"][0]

        def deny(code):
            out[(ci, seq)] = dict(sequence=seq, submitted=submitted, eligible=0, deductible=0, copay=0, coinsurance=0, benefit=0, reasons=[code])
        periods = [m for m in policy["members"] if m["patient"] == patient]
        if not periods:
            deny(31); continue
        if not any(m["from"] <= date <= m["to"] for m in periods):
            deny(26 if date < min(m["from"] for m in periods) else 27); continue
        from datetime import date as d
        if "created" in claim and (d.fromisoformat(claim["created"][:10]) - d.fromisoformat(date)).days > policy["timelyFilingDays"]:
            deny(29); continue
        service = fees.get((coding["system"], coding["code"]))
        if service is None:
            deny(96); continue
        if service.get("priorAuth") and not claim.get("insurance", [{}])[0].get("preAuthRef"):
            deny(197); continue
        key = (patient, claim["provider"]["identifier"]["value"], coding["system"], coding["code"], date)
        if key in seen:
            deny(18); continue
        seen.add(key)
        ded_met, oop_met = met.get(patient, (0, 0))
        allowed = min(submitted, service["allowed"])
        ded = min(allowed, policy["deductible"] - ded_met)
        copay = min(allowed - ded, service.get("copay", 0))
        coins = ((allowed - ded - copay) * policy["coinsuranceBp"] + 5000) // 10000
        excess = ded + copay + coins - (policy["outOfPocketMax"] - oop_met)
        if excess > 0:
            take = min(excess, coins); coins -= take; excess -= take
            take = min(excess, copay); copay -= take; excess -= take
            ded -= min(excess, ded)
        share = ded + copay + coins
        met[patient] = (ded_met + ded, oop_met + share)
        reasons = [c for c, on in ((1, ded > 0), (2, coins > 0), (3, copay > 0), (45, submitted > service["allowed"])) if on]
        out[(ci, seq)] = dict(sequence=seq, submitted=submitted, eligible=allowed, deductible=ded, copay=copay, coinsurance=coins,
                              benefit=allowed - share, reasons=reasons)
    return [[out[(ci, item["sequence"])] for item in claim["item"]] for ci, claim in enumerate(claims)]


def random_case(rng):
    codes = [f"9{n:04d}" for n in rng.sample(range(10000), 6)]
    policy = {
        "plan": f"plan-{rng.randrange(1000)}", "currency": "EUR", "year": {"start": "2027-01-01", "end": "2027-12-31"},
        "deductible": rng.choice([0, 5000, 50000, 100000]), "outOfPocketMax": rng.choice([3000, 20000, 300000]),
        "coinsuranceBp": rng.choice([0, 1000, 2000, 2500, 3333, 10000]), "timelyFilingDays": rng.choice([30, 90, 365]),
        "services": [{"system": CPT, "code": c, "allowed": rng.randrange(1, 50000), "copay": rng.choice([0, 500, 2500]),
                      "priorAuth": rng.random() < 0.2} for c in codes[:5]],
        "members": [{"patient": PATIENTS[0], "from": "2027-01-01", "to": "2027-12-31"},
                    {"patient": PATIENTS[1], "from": "2027-03-01", "to": "2027-08-31"}],
    }
    claims = []
    for n in range(rng.randrange(5, 30)):
        items = []
        for s in range(rng.randrange(1, 5)):
            month, day = rng.randrange(1, 13), rng.randrange(1, 29)
            cents = rng.randrange(0, 60000)
            items.append({"sequence": s + 1, "productOrService": {"coding": [{"system": CPT, "code": rng.choice(codes)}]},
                          "servicedDate": f"2027-{month:02d}-{day:02d}", "net": {"value": float(Decimal(cents) / 100), "currency": "EUR"}})
        claim = {"resourceType": "Claim", "id": f"claim-{n}", "patient": {"identifier": {"value": rng.choice(PATIENTS)}},
                 "provider": {"identifier": {"value": rng.choice(["hospital-a", "hospital-b"])}}, "item": items}
        if rng.random() < 0.5:
            latest = max(i["servicedDate"] for i in items)
            claim["created"] = rng.choice([latest, "2027-12-31"])
        if rng.random() < 0.4:
            claim["insurance"] = [{"sequence": 1, "focal": True, "coverage": {"display": "x"}, "preAuthRef": ["PA-7"]}]
        claims.append(claim)
    # Resubmissions: some lines billed again, by the same provider for the same patient (duplicates).
    for n, original in enumerate(rng.sample(claims, 3)):
        again = dict(original, id=f"again-{n}", item=[dict(rng.choice(original["item"]), sequence=1)])
        claims.append(again)
    return policy, claims


@pytest.mark.parametrize("seed", range(40))
def test_the_rule_matches_an_independent_computation(tmp_path, seed):
    rng = random.Random(seed)
    policy, claims = random_case(rng)
    jsonschema.validate(policy, SCHEMA)
    run = adjudicate(tmp_path, policy, claims)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)["claims"]
    want = oracle(policy, claims)
    assert [c["id"] for c in got] == [c["id"] for c in claims]
    for claim, expected in zip(got, want):
        assert claim["items"] == expected, claim["id"]
        denied = sum(1 for i in expected if i["eligible"] == 0 and len(i["reasons"]) == 1 and i["reasons"][0] in (18, 26, 27, 29, 31, 96, 197))
        assert claim["outcome"] == ("complete" if denied == 0 else "error" if denied == len(expected) else "partial")


def test_the_examples(tmp_path):
    policy = json.load(open(os.path.join(ROOT, "examples", "claims", "policy.json")))
    bundle = json.load(open(os.path.join(ROOT, "examples", "claims", "claims.json")))
    jsonschema.validate(policy, SCHEMA)
    run = adjudicate(tmp_path, policy, bundle)
    assert run.returncode == 0, run.stderr
    got = {c["id"]: c for c in json.loads(run.stdout)["claims"]}
    claims = [e["resource"] for e in bundle["entry"]]
    for claim, expected in zip(claims, oracle(policy, claims)):
        assert got[claim["id"]]["items"] == expected
    assert got["visit-1"]["items"][0]["reasons"] == [1, 45]
    assert got["x-ray-1"]["items"][0]["reasons"] == [197]
    assert got["visit-1-again"]["items"][0]["reasons"] == [18]
    # The same claims as a JSON array give the same answer.
    again = adjudicate(tmp_path, policy, claims)
    assert json.loads(again.stdout) == json.loads(run.stdout)


BAD_POLICIES = [
    ("services[1].allowed", lambda p: p["services"][1].update(allowed=-1)),
    ("services[0].copay", lambda p: p["services"][0].update(copay="25")),
    ("coinsuranceBp", lambda p: p.update(coinsuranceBp=10001)),
    ("currency", lambda p: p.update(currency="EURO")),
    ("year.start", lambda p: p["year"].update(start="2027-13-01")),
    ("members[0].patient", lambda p: p["members"][0].update(patient="alice")),
    ("deductable", lambda p: p.update(deductable=1)),
    ("plan", lambda p: p.pop("plan")),
]


@pytest.mark.parametrize("path,change", BAD_POLICIES, ids=[b[0] for b in BAD_POLICIES])
def test_a_bad_policy_is_refused_by_careledger_and_by_the_schema(tmp_path, path, change):
    policy = json.load(open(os.path.join(ROOT, "examples", "claims", "policy.json")))
    change(policy)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(policy, SCHEMA)
    run = adjudicate(tmp_path, policy, json.load(open(os.path.join(ROOT, "examples", "claims", "claims.json"))))
    assert run.returncode == 2, run.stderr
    assert f"bad_policy: {path}: " in run.stderr, run.stderr


def test_a_bad_claim_names_its_path(tmp_path):
    policy = json.load(open(os.path.join(ROOT, "examples", "claims", "policy.json")))
    claim = json.load(open(os.path.join(ROOT, "examples", "claims", "claims.json")))["entry"][0]["resource"]
    claim["item"][1]["net"]["value"] = 40.001
    run = adjudicate(tmp_path, policy, claim)
    assert run.returncode == 2 and "bad_claim: item[1].net.value: " in run.stderr, run.stderr
    run = adjudicate(tmp_path, policy, [claim])
    assert run.returncode == 2 and "bad_claim: [0].item[1].net.value: " in run.stderr, run.stderr


SYNTHEA = os.path.join(ROOT, "..", "shared", "vectors", "fhir", "synthea")


def did_key(seed):
    """A did:key for a Synthea patient: an Ed25519 key from a seed (multicodec 0xed01, base58btc)."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    public = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest()).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    data = b"\xed\x01" + public
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    n, text = int.from_bytes(data, "big"), ""
    while n:
        n, r = divmod(n, 58)
        text = alphabet[r] + text
    return "did:key:z" + "1" * (len(data) - len(data.lstrip(b"\0"))) + text


def synthea_claims():
    """Every Claim of the Synthea bundles, as adjudication reads it: the patient named by a did, the
    provider by its reference, the date of service from billablePeriod.start (a dateTime), and the
    claim's total spread over the items that carry no amount of their own (the remainder's cents on
    the first of them)."""
    out = []
    for path in sorted(glob.glob(os.path.join(SYNTHEA, "*.json"))):
        bundle = json.load(open(path))
        for entry in bundle["entry"]:
            claim = entry["resource"]
            if claim["resourceType"] != "Claim":
                continue
            claim = json.loads(json.dumps(claim))
            claim["patient"] = {"identifier": {"system": "urn:ietf:rfc:3986", "value": did_key(claim["patient"]["reference"])}}
            claim["provider"] = {"identifier": {"value": claim["provider"]["reference"]}}
            total = int(Decimal(str(claim["total"]["value"])) * 100)
            priced = sum(int(Decimal(str(i["net"]["value"])) * 100) for i in claim["item"] if "net" in i)
            bare = [i for i in claim["item"] if "net" not in i]
            rest = max(0, total - priced)
            for k, item in enumerate(bare):
                cents = rest // len(bare) + (rest % len(bare) if k == 0 else 0)
                item["net"] = {"value": float(Decimal(cents) / 100), "currency": "USD"}
            out.append(claim)
    return out


def test_every_synthea_claim(tmp_path):
    """Each plan year of the Synthea claims under a test policy of that year (every service seen covered
    at a seeded fee, some needing prior authorisation, one in eight not covered; each patient a member
    for the year), adjudicated by the command and by the independent computation above."""
    claims = synthea_claims()
    assert len(claims) == 44
    by_year = {}
    for claim in claims:
        by_year.setdefault(claim["billablePeriod"]["start"][:4], []).append(claim)
    rng = random.Random(20261207)
    lines = 0
    for year, group in sorted(by_year.items()):
        for claim in group:
            for item in claim["item"]:
                item["servicedDate"] = claim["billablePeriod"]["start"][:10]  # the oracle reads servicedDate
        services = sorted({(i["productOrService"]["coding"][0]["system"], i["productOrService"]["coding"][0]["code"]) for c in group for i in c["item"]})
        policy = {
            "plan": f"synthea-{year}", "currency": "USD", "year": {"start": f"{year}-01-01", "end": f"{year}-12-31"},
            "deductible": rng.choice([0, 10000, 50000]), "outOfPocketMax": rng.choice([20000, 300000]), "coinsuranceBp": rng.choice([1000, 2000]),
            "timelyFilingDays": 365,
            "services": [{"system": s, "code": c, "allowed": rng.randrange(500, 40000), "copay": rng.choice([0, 1500]), "priorAuth": rng.random() < 0.1}
                         for s, c in services if rng.random() >= 0.125],
            "members": [{"patient": p, "from": f"{year}-01-01", "to": f"{year}-12-31"} for p in sorted({c["patient"]["identifier"]["value"] for c in group})],
        }
        jsonschema.validate(policy, SCHEMA)
        # The command reads the date from billablePeriod.start itself: give it the claims without servicedDate.
        given = json.loads(json.dumps(group))
        for claim in given:
            for item in claim["item"]:
                item.pop("servicedDate")
        run = adjudicate(tmp_path, policy, {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": c} for c in given]})
        assert run.returncode == 0, run.stderr
        got = json.loads(run.stdout)["claims"]
        for claim, expected in zip(got, oracle(policy, group)):
            assert claim["items"] == expected, (year, claim["id"])
            lines += len(expected)
    assert lines == 84


def test_an_insurer_publishes_and_shows_its_policy(tmp_path):
    """`careledger policy publish` and `policy show` against `careledger up` (its demo insurer): a bad
    policy exits 2 with its path before anything is sent; versions are found by number and by day."""
    from careledger_node import cli, running_node
    with running_node("careledger-claims-") as (url, data):
        insurer_key = os.path.join(data, "keys", "insurer.key")
        insurer = cli("key", "show", "--key", insurer_key).strip()
        policy = json.load(open(os.path.join(ROOT, "examples", "claims", "policy.json")))
        bad = json.loads(json.dumps(policy))
        bad["services"][2]["copay"] = -1
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        refused = subprocess.run([BINARY, "policy", "publish", "--node", url, "--key", insurer_key, str(tmp_path / "bad.json")], capture_output=True, text=True)
        assert refused.returncode == 2 and "bad_policy: services[2].copay: " in refused.stderr, refused.stderr
        (tmp_path / "v1.json").write_text(json.dumps(policy))
        first = json.loads(cli("policy", "publish", "--node", url, "--key", insurer_key, str(tmp_path / "v1.json"), "--json"))
        assert first["status"] == "committed" and first["result"]["version"] == 1
        policy["effective"] = "2027-07-01"
        policy["services"][0]["allowed"] = 11000
        (tmp_path / "v2.json").write_text(json.dumps(policy))
        assert json.loads(cli("policy", "publish", "--node", url, "--key", insurer_key, str(tmp_path / "v2.json"), "--json"))["result"]["version"] == 2
        versions = json.loads(cli("policy", "show", "--node", url, "--insurer", insurer, "--plan", "gold-2027", "--json"))["versions"]
        assert [(v["version"], v["effective"]) for v in versions] == [(1, "2027-01-01"), (2, "2027-07-01")]
        june = json.loads(cli("policy", "show", "--node", url, "--insurer", insurer, "--plan", "gold-2027", "--date", "2027-06-30", "--json"))
        july = json.loads(cli("policy", "show", "--node", url, "--insurer", insurer, "--plan", "gold-2027", "--date", "2027-07-01", "--json"))
        assert june["version"] == 1 and june["policy"]["services"][0]["allowed"] == 12000
        assert july["version"] == 2 and july["policy"]["services"][0]["allowed"] == 11000
        missing = subprocess.run([BINARY, "policy", "show", "--node", url, "--insurer", insurer, "--plan", "silver"], capture_output=True, text=True)
        assert missing.returncode == 1 and "not_found" in missing.stderr


def test_a_claim_from_the_hospital_to_payment(tmp_path):
    """Against `careledger up` (which acts for Hospital A and the insurer): the insurer publishes the
    example policy with Alice as member; Alice's consent lets the insurer see her claims for payment;
    Hospital A submits the example's first claim; the insurer's node adjudicates it as the rule says;
    the insurer pays; Alice appeals; it is adjudicated again, and nothing more is owed."""
    import time

    from careledger_node import cli, running_node
    with running_node("careledger-claims-") as (url, data):
        keys = os.path.join(data, "keys")
        did = {n: cli("key", "show", "--key", os.path.join(keys, f"{n}.key")).strip() for n in ["alice", "hospital-a", "insurer"]}
        policy = json.load(open(os.path.join(ROOT, "examples", "claims", "policy.json")))
        policy["members"][0]["patient"] = did["alice"]
        policy["deductible"] = 5000
        (tmp_path / "policy.json").write_text(json.dumps(policy))
        cli("policy", "publish", "--node", url, "--key", os.path.join(keys, "insurer.key"), str(tmp_path / "policy.json"))
        claim = json.load(open(os.path.join(ROOT, "examples", "claims", "claims.json")))["entry"][0]["resource"]
        claim["patient"]["identifier"]["value"] = did["alice"]
        claim["provider"]["identifier"]["value"] = did["hospital-a"]
        (tmp_path / "claim.json").write_text(json.dumps(claim))
        submit = ["claim", "submit", "--node", url, "--key", os.path.join(keys, "hospital-a.key"), "--insurer", did["insurer"], "--plan", "gold-2027",
                  str(tmp_path / "claim.json"), "--json"]
        # Without her consent for payment the insurer may not see it: refused (exit 1).
        refused = subprocess.run([BINARY, *submit], capture_output=True, text=True)
        assert refused.returncode == 1, refused.stderr
        cli("consent", "grant", "--node", url, "--key", os.path.join(keys, "alice.key"), "--grantee", did["hospital-a"])
        cli("consent", "grant", "--node", url, "--key", os.path.join(keys, "alice.key"), "--grantee", did["insurer"], "--purpose", "payment",
            "--categories", "financial")
        # The first attempt wrote the sealed claim before the ledger refused it; a new id is a new claim.
        claim["id"] = "visit-1b"
        (tmp_path / "claim.json").write_text(json.dumps(claim))
        submitted = json.loads(cli(*submit))
        assert submitted["status"] == "queued"

        def status(key="alice"):
            return json.loads(cli("claim", "status", "--node", url, "--key", os.path.join(keys, f"{key}.key"), "visit-1b", "--json"))
        for _ in range(400):
            if status()["status"] == "adjudicated":
                break
            time.sleep(0.05)
        adjudicated = status()
        assert adjudicated["status"] == "adjudicated", adjudicated
        expected = oracle(policy, [dict(claim, item=[dict(i) for i in claim["item"]])])[0]
        assert [{k: v for k, v in line.items() if k != "version"} for line in adjudicated["adjudication"]["lines"]] == expected
        owed = adjudicated["adjudication"]["benefit"]
        assert owed == sum(i["benefit"] for i in expected) > 0
        paid = json.loads(cli("claim", "pay", "--node", url, "--key", os.path.join(keys, "insurer.key"), "visit-1b", "--reference", "SEPA-42", "--json"))
        assert paid["result"]["status"] == "paid" and paid["result"]["paid"] == owed
        appeal = json.loads(cli("claim", "appeal", "--node", url, "--key", os.path.join(keys, "alice.key"), "visit-1b", "--reason", "I was seen once that day", "--json"))
        assert appeal["result"]["status"] == "appealed"
        for _ in range(400):
            if status()["status"] == "adjudicated":
                break
            time.sleep(0.05)
        again = status("hospital-a")
        assert again["status"] == "adjudicated" and [h["status"] for h in again["history"]][-2:] == ["appealed", "adjudicated"]
        nothing = subprocess.run([BINARY, "claim", "pay", "--node", url, "--key", os.path.join(keys, "insurer.key"), "visit-1b", "--reference", "x"],
                                 capture_output=True, text=True)
        assert nothing.returncode == 1 and "nothing_to_pay" in nothing.stderr, nothing.stderr
        # Someone else's key is refused the claim.
        other = subprocess.run([BINARY, "claim", "status", "--node", url, "--key", os.path.join(keys, "dr-carol.key"), "visit-1b"], capture_output=True, text=True)
        assert other.returncode == 1 and "forbidden" in other.stderr
