"""The FHIR facade driven by a real FHIR client library (fhirclient, SMART on FHIR's Python client).

Starts `careledger up` on a free loopback port in a temporary directory (one node for the module).
Each test works on principals of its own, made by fixtures: a newly registered patient, a practitioner
newly registered by Hospital A (the organisation the node acts for), and the patient's consent for that
practitioner, granted through the CLI. Principals authenticate with an Ed25519 signature of the server
challenge (the `cryptography` package); the tests read the CapabilityStatement, Consent, AuditEvent and
clinical resources through fhirclient's R4 models (which refuse resources that do not match the R4
structure). No test reads what another test wrote, so they pass in any order and one by one.
"""
import base64
import json
import os

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fhirclient import client
from fhirclient.models.auditevent import AuditEvent
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.bundle import Bundle
from fhirclient.models.consent import Consent
from fhirclient.server import FHIRPermissionDeniedException

from careledger_node import cli, running_node


@pytest.fixture(scope="module")
def node():
    with running_node("careledger-interop-") as started:
        yield started


def new_key(directory, name):
    """A new Ed25519 + X25519 key file, returned as its JSON with its path under "file"."""
    path = os.path.join(directory, f"{name}.key")
    cli("key", "generate", "--out", path)
    with open(path) as f:
        keyfile = json.load(f)
    keyfile["file"] = path
    return keyfile


@pytest.fixture
def patient(node, tmp_path):
    """A patient registered for this test alone (she registers herself): no records, consents or accesses yet."""
    url, _ = node
    keyfile = new_key(tmp_path, "patient")
    cli("patient", "register", "--node", url, "--key", keyfile["file"])
    return keyfile


@pytest.fixture
def practitioner(node, tmp_path):
    """A practitioner of Hospital A (the organisation the node acts for), registered by the hospital for this test alone."""
    url, data = node
    keyfile = new_key(tmp_path, "practitioner")
    cli("principal", "register", "--node", url, "--key", os.path.join(data, "keys", "hospital-a.key"),
        "--role", "practitioner", "--subject-key", keyfile["file"])
    return keyfile


@pytest.fixture
def consent(node, patient, practitioner):
    """The patient's consent (treatment, every type) for the practitioner, granted through the CLI; its id."""
    url, _ = node
    granted = cli("consent", "grant", "--node", url, "--key", patient["file"], "--grantee", practitioner["did"], "--json")
    return json.loads(granted)["grant"]


def patient_reference(keyfile):
    return "Patient/" + keyfile["did"][len("did:key:"):]


def token(url, keyfile):
    chain = requests.get(url + "/healthz").json()["chainId"]
    challenge = requests.post(url + "/v1/auth/challenge").json()["challenge"]
    signer = Ed25519PrivateKey.from_private_bytes(base64.b64decode(keyfile["privateKey"]))
    signature = signer.sign(f"careledger-auth\n{chain}\n{challenge}\n".encode())
    answer = requests.post(url + "/v1/auth/token", json={"did": keyfile["did"], "challenge": challenge, "signature": base64.b64encode(signature).decode()})
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def fhir(url, bearer=None):
    smart = client.FHIRClient(settings={"app_id": "careledger-interop", "api_base": url + "/fhir/"})
    if bearer:
        smart.server.session.headers["Authorization"] = f"Bearer {bearer}"
    return smart


def test_capability_statement_parses_as_r4(node):
    url, _ = node
    statement = CapabilityStatement.read_from("metadata", fhir(url).server)
    assert statement.fhirVersion == "4.0.1"
    types = {r.type for r in statement.rest[0].resource}
    assert {"Consent", "AuditEvent"} <= types


def test_consent_and_audit_events_through_fhirclient(node, patient, practitioner, consent):
    url, _ = node

    server = fhir(url, token(url, patient)).server
    consents = Consent.where(struct={"patient": patient["did"]}).perform_resources(server)
    assert [c.id for c in consents] == [consent]
    assert consents[0].status == "active"
    assert consents[0].provision.type == "permit"
    assert consents[0].provision.actor[0].reference.identifier.value == practitioner["did"]
    one = Consent.read(consent, server)
    assert one.patient.identifier.value == patient["did"]

    # The practitioner's token cannot read the patient's consents: the facade answers an OperationOutcome (HTTP 403).
    practitioner_server = fhir(url, token(url, practitioner)).server
    with pytest.raises(FHIRPermissionDeniedException) as refused:
        Consent.where(struct={"patient": patient["did"]}).perform_resources(practitioner_server)
    assert refused.value.response.status_code == 403
    assert refused.value.response.json()["resourceType"] == "OperationOutcome"

    # The CLI's timeline read during the grant (the consent fixture) is an access event: it comes back as an R4 AuditEvent.
    events = AuditEvent.where(struct={"patient": patient["did"]}).perform_resources(server)
    assert len(events) >= 1
    assert all(e.type.code == "110110" for e in events)
    assert any(e.agent[0].who.identifier.value == patient["did"] for e in events)


def test_create_read_search_observation_through_fhirclient(node, patient, practitioner, consent):
    """A practitioner of Hospital A (whose organisation this dev node acts for) writes and reads through fhirclient models."""
    from fhirclient.models.observation import Observation

    url, _ = node
    patient_ref = patient_reference(patient)
    server = fhir(url, token(url, practitioner)).server

    observation = Observation({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": patient_ref},
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    })
    created = observation.create(server)
    assert created["resourceType"] == "Observation"
    read = Observation.read(created["id"], server)
    assert read.valueQuantity.value == 72
    assert read.subject.reference == patient_ref
    assert read.meta.versionId == "1"
    found = Observation.where(struct={"patient": patient_ref}).perform_resources(server)
    assert [o.id for o in found] == [created["id"]]

    # An invalid resource is refused with an OperationOutcome naming the element.
    answer = requests.post(url + "/fhir/Observation", json={"resourceType": "Observation", "code": {"text": "x"}, "subject": {"reference": patient_ref}},
                           headers={"Authorization": f"Bearer {token(url, practitioner)}"})
    assert answer.status_code == 400
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["Observation.status"]


def test_update_history_and_synthea_transaction_through_fhirclient(node, patient, practitioner, consent):
    """Update with If-Match, vread and _history through fhirclient's models, and a Synthea patient Bundle
    posted as a transaction through fhirclient's server, read back equal."""
    from fhirclient.models.condition import Condition

    url, _ = node
    patient_ref = patient_reference(patient)
    bearer = token(url, practitioner)
    server = fhir(url, bearer).server

    condition = Condition({"resourceType": "Condition", "subject": {"reference": patient_ref}, "code": {"text": "Asthma"}})
    created = Condition(condition.create(server))
    created.code.text = "Asthma, controlled"
    # A stale If-Match is refused (412) with an OperationOutcome; the right one updates.
    stale = requests.put(f"{url}/fhir/Condition/{created.id}", json=created.as_json(), headers={"Authorization": f"Bearer {bearer}", "If-Match": 'W/"7"'})
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    updated = requests.put(f"{url}/fhir/Condition/{created.id}", json=created.as_json(), headers={"Authorization": f"Bearer {bearer}", "If-Match": 'W/"1"'})
    assert updated.status_code == 200, updated.text
    assert updated.headers["ETag"] == 'W/"2"'
    assert Condition.read(created.id, server).code.text == "Asthma, controlled"
    first = Condition.read_from(f"Condition/{created.id}/_history/1", server)
    assert first.code.text == "Asthma" and first.meta.versionId == "1"
    history = Bundle.read_from(f"Condition/{created.id}/_history", server)
    assert history.type == "history" and history.total == 2
    assert [e.resource.meta.versionId for e in history.entry] == ["2", "1"]

    # A Synthea patient Bundle as a FHIR transaction, posted through fhirclient's server.
    folder = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "vectors", "fhir", "synthea")
    name = sorted(f for f in os.listdir(folder) if f.endswith(".json"))[0]
    with open(os.path.join(folder, name)) as f:
        bundle = json.load(f)
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"].setdefault("identifier", []).append({"system": "urn:ietf:rfc:3986", "value": patient["did"]})
    answer = Bundle(server.post_json("", bundle).json())
    assert answer.type == "transaction-response"
    assert len(answer.entry) == len(bundle["entry"])
    # One Observation read back through the models equals what was sent (references resolved to the server's ids).
    locations = {e["fullUrl"]: r.response.location for e, r in zip(bundle["entry"], answer.entry)}
    sent = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    type_, new_id = locations[sent["fullUrl"]].split("/")[:2]
    from fhirclient.models.observation import Observation
    back = Observation.read(new_id, server).as_json()
    expected = dict(sent["resource"])
    for k in ("id", "meta"):
        expected.pop(k, None)
        back.pop(k, None)
    reference = locations[expected["subject"]["reference"]].split("/")
    expected["subject"] = {"reference": f"{reference[0]}/{reference[1]}"}
    expected["encounter"] = {"reference": "/".join(locations[expected["encounter"]["reference"]].split("/")[:2])}
    assert back == Observation(expected).as_json()
