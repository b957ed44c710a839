#!/usr/bin/env python3
"""Golden vectors for CareLedger's chain formats, from an independent implementation.

Re-implements, from their documentation in the Swift sources, the binary and text formats the
chain commits to (transactions, block headers, block proposals, votes, quorum certificates,
C2SP checkpoints and signed notes, the state tree, key envelopes, receipts), and writes
chain-formats.json next to this file. Needs only Python 3, hashlib and the `cryptography`
package (Ed25519). Deterministic: Ed25519 signatures are deterministic (RFC 8032) and every
input is fixed.

    python3 Tests/LedgerCoreTests/Vectors/make_chain_formats.py
"""

import base64
import hashlib
import hmac
import json
import os
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "chain-formats.json")


# ---------------------------------------------------------------------------------------------
# Primitives


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")  # standard alphabet, padded (RFC 4648 §4)


def varint(n: int) -> bytes:
    """Unsigned LEB128, shortest form, 0 <= n < 2^64."""
    assert 0 <= n < 1 << 64
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def w_bytes(data: bytes) -> bytes:
    return varint(len(data)) + data


def w_string(text: str) -> bytes:
    return w_bytes(text.encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# Canonical JSON (JSONValue.canonicalBytes): keys in UTF-8 byte order, no whitespace, integers in
# decimal, strings with \" \\ \n \r \t \b \f and \u00xx (lower-case hex) for the other bytes below
# 0x20; everything else (including "/", 0x7f and all non-ASCII) written as raw UTF-8.

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
SHORT_ESCAPES = {0x22: b'\\"', 0x5C: b"\\\\", 0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t", 0x08: b"\\b", 0x0C: b"\\f"}


def cj_string(s: str) -> bytes:
    out = bytearray(b'"')
    for byte in s.encode("utf-8"):
        if byte in SHORT_ESCAPES:
            out += SHORT_ESCAPES[byte]
        elif byte < 0x20:
            out += b"\\u00" + b"%02x" % byte
        else:
            out.append(byte)
    out += b'"'
    return bytes(out)


def canonical(value) -> bytes:
    if value is None:
        return b"null"
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    if isinstance(value, int):
        assert INT64_MIN <= value <= INT64_MAX, "payload integers must fit Int64"
        return str(value).encode("ascii")
    if isinstance(value, float):
        raise ValueError("no floating-point numbers in the vectors")
    if isinstance(value, str):
        return cj_string(value)
    if isinstance(value, list):
        return b"[" + b",".join(canonical(v) for v in value) + b"]"
    if isinstance(value, dict):
        keys = sorted(value.keys(), key=lambda k: k.encode("utf-8"))
        return b"{" + b",".join(cj_string(k) + b":" + canonical(value[k]) for k in keys) + b"}"
    raise TypeError(type(value))


# ---------------------------------------------------------------------------------------------
# Keys

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    digits = ""
    while n:
        n, r = divmod(n, 58)
        digits = B58[r] + digits
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + digits


class Key:
    def __init__(self, name: str, seed: bytes):
        self.name = name
        self.seed = seed
        self.private = Ed25519PrivateKey.from_private_bytes(seed)
        self.public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.did = "did:key:z" + base58(b"\xed\x01" + self.public)

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


KEYS = {n: Key(n, bytes([i]) * 32) for i, n in enumerate(["k1", "k2", "k3", "k4"], start=1)}


def verify(public: bytes, signature: bytes, message: bytes):
    Ed25519PublicKey.from_public_bytes(public).verify(signature, message)  # raises if invalid


# ---------------------------------------------------------------------------------------------
# Merkle hashes (RFC 9162 §2.1)


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def mth(leaves):
    """MTH of a list of leaf hashes."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


# ---------------------------------------------------------------------------------------------
# Transactions


def transaction(name, chain_id, signer, nonce, contract, action, payload):
    key = KEYS[signer]
    payload_bytes = canonical(payload)
    body = (
        b"\x01"
        + w_string(chain_id)
        + key.public
        + varint(nonce)
        + w_string(contract)
        + w_string(action)
        + w_bytes(payload_bytes)
    )
    signature = key.sign(body)
    encoded = body + signature
    return {
        "name": name,
        "chainId": chain_id,
        "signer": signer,
        "nonce": nonce,
        "nonceText": str(nonce),
        "contract": contract,
        "action": action,
        "payload": payload,
        "payloadCanonical": payload_bytes.decode("utf-8"),
        "signature": signature.hex(),
        "encoded": encoded.hex(),
        "id": sha256(encoded).hex(),
        "logLeaf": leaf_hash(encoded).hex(),
    }


TX_A = transaction(
    "notary-small", "test-chain", "k1", 7, "notary", "record", {"b": 2, "a": 'x\n"y"'}
)
TX_B = transaction(
    "nested-nonce-300",
    "test-chain",
    "k2",
    300,
    "records",
    "put",
    {
        "recordId": "rec-1",
        "version": 3,
        "nested": {"list": [1, -42, None, True, False, "s", {"k": []}, []], "empty": {}, "deep": {"a": {"b": {"c": [0]}}}},
        "min": INT64_MIN,
        "max": INT64_MAX,
        "negative": -1,
        "zero": 0,
        "absent": None,
    },
)
TX_C = transaction(
    "unicode-nonce-2^35",
    "test-chain",
    "k3",
    1 << 35,
    "consent",
    "grant",
    {
        "é": "✓ done",
        "Z": "😀",
        "a\u0001b": "ctl\u0001\u001f\u007f end",
        "tab": "\t\r\b\f/\\ \u2028",
        "ä": 1,
        "A": "upper",
        "\uff01": "fullwidth (UTF-8 ef bc 81, sorts before the emoji key; UTF-16 would not)",
        "😀": "emoji key",
        "a": "lower",
        "": "empty key",
    },
)
LONG_TEXT = (
    "Discharge summary: patient admitted for observation, vitals stable throughout the stay; "
    "follow-up in two weeks with the attending physician. Medication unchanged. "
    "No adverse events recorded."
)
TX_D = transaction(
    "long-max-nonce",
    "careledger-main",
    "k4",
    (1 << 64) - 1,
    "notary",
    "record",
    {"hash": sha256(b"discharge-summary.pdf").hex(), "label": LONG_TEXT},
)
TX_E = transaction("empty-payload", "careledger-main", "k1", 0, "audit", "review", {})
TRANSACTIONS = [TX_A, TX_B, TX_C, TX_D, TX_E]
TX_BY_NAME = {t["name"]: t for t in TRANSACTIONS}


# ---------------------------------------------------------------------------------------------
# State tree (sparse Merkle tree over SHA-256(key) with leaf compression)

ZERO = bytes(32)


def bit(h: bytes, i: int) -> int:
    """Bit i of a hash, 0 = most significant bit of byte 0."""
    return (h[i >> 3] >> (7 - (i & 7))) & 1


def smt_leaf(key_hash: bytes, value_hash: bytes) -> bytes:
    return sha256(b"\x00" + key_hash + value_hash)


def smt_build(leaves, depth=0):
    """Root of the compressed subtree holding exactly `leaves` [(keyHash, valueHash)] below depth."""
    if not leaves:
        return ZERO
    if len(leaves) == 1:
        return smt_leaf(*leaves[0])
    left = [l for l in leaves if bit(l[0], depth) == 0]
    right = [l for l in leaves if bit(l[0], depth) == 1]
    return sha256(b"\x01" + smt_build(left, depth + 1) + smt_build(right, depth + 1))


def state_tree(name, entries):
    """entries: [(key, value text)]; a later entry for a key replaces an earlier one."""
    latest = {}
    for k, v in entries:
        latest[k] = v
    leaves = []
    for k, v in latest.items():
        kh, vh = sha256(k.encode("utf-8")), sha256(v.encode("utf-8"))
        leaves.append((k, kh, vh, smt_leaf(kh, vh)))
    leaves.sort(key=lambda l: l[1])
    root = smt_build([(kh, vh) for _, kh, vh, _ in leaves])
    return {
        "name": name,
        "entries": [{"key": k, "value": v} for k, v in entries],
        "leaves": [{"key": k, "keyHash": kh.hex(), "valueHash": vh.hex(), "leafHash": lh.hex()} for k, kh, vh, lh in leaves],
        "root": root.hex(),
    }


def cjs(value) -> str:
    return canonical(value).decode("utf-8")


K1, K2, K3, K4 = (KEYS[n] for n in ["k1", "k2", "k3", "k4"])
DOC_HASH = sha256(b"protocol-v4.pdf").hex()
REALISTIC = [
    ("identity/" + K1.did, cjs({"did": K1.did, "name": "Northside Clinic", "kind": "organisation", "encryptionKey": b64(bytes(range(32)))})),
    ("identity/" + K2.did, cjs({"did": K2.did, "name": "Dr. Ana Sousa", "kind": "practitioner", "organisation": K1.did})),
    ("identity/" + K3.did, cjs({"did": K3.did, "name": "Zoë Martin", "kind": "patient"})),
    ("records/rec-1", cjs({"recordId": "rec-1", "patient": K3.did, "resourceType": "Observation", "version": 1, "custodian": K1.did, "keys": sha256(b"envelope-1").hex(), "saltedHash": sha256(b"blob-1").hex(), "recipients": sorted([K2.did, K3.did])})),
    ("records/rec-2", cjs({"recordId": "rec-2", "patient": K3.did, "resourceType": "MedicationStatement", "version": 2, "custodian": K1.did, "keys": sha256(b"envelope-2").hex(), "saltedHash": sha256(b"blob-2").hex(), "recipients": [K3.did]})),
    ("records/by-patient/" + K3.did, cjs(["rec-1", "rec-2"])),
    ("consent/" + K3.did + "/c-1", cjs({"id": "c-1", "patient": K3.did, "grantee": K2.did, "scope": ["Observation", "MedicationStatement"], "expires": 1735689600000})),
    ("consent/by-id/c-1", cjs({"patient": K3.did})),
    ("consent/" + K3.did, cjs(["c-1"])),
    ("notary/" + DOC_HASH, cjs({"hash": DOC_HASH, "label": "Trial protocol v4 — signed", "author": K1.did, "time": 1700000000123, "height": 130, "tx": TX_A["id"]})),
    ("audit/access/" + K3.did + "/0", cjs({"reader": K2.did, "record": "rec-1", "time": 1700000000456})),
    ("governance/validators", cjs(sorted([K1.did, K2.did, K3.did]))),
]


def shared_prefix_pair():
    """Two notary keys whose hashes share their first 8 bits (a chain of one-child nodes)."""
    base = "notary/doc-0"
    h0 = sha256(base.encode())
    n = 1
    while True:
        other = "notary/doc-%d" % n
        if sha256(other.encode())[0] == h0[0]:
            return base, other
        n += 1


PAIR = shared_prefix_pair()
STATE_TREES = [
    state_tree("empty", []),
    state_tree("one-entry", [("notary/doc", cjs({"label": "x"}))]),
    state_tree("two-entries", [("a", "1"), ("b", "2")]),
    state_tree("two-entries-shared-prefix", [(PAIR[0], cjs({"n": 0})), (PAIR[1], cjs({"n": 1}))]),
    state_tree("realistic-12", REALISTIC),
    state_tree("overwrite-and-empty-value", [("records/rec-9", "old"), ("records/rec-9", "new"), ("records/empty", "")]),
]


# ---------------------------------------------------------------------------------------------
# Block headers and proposals


def header(name, chain_id, height, previous_hash, time_millis, log_size, log_root, state_root, tx_names, proposer, extra_count=None, extra_hash=None):
    if tx_names is not None:
        ids = [bytes.fromhex(TX_BY_NAME[n]["id"]) for n in tx_names]
        count, txs_hash = len(ids), sha256(b"".join(ids))
    else:
        count, txs_hash = extra_count, extra_hash
    encoded = (
        b"\x01"
        + w_string(chain_id)
        + varint(height)
        + previous_hash
        + varint(time_millis)
        + varint(log_size)
        + log_root
        + state_root
        + varint(count)
        + txs_hash
        + KEYS[proposer].public
    )
    h = {
        "name": name,
        "chainId": chain_id,
        "height": height,
        "previousHash": previous_hash.hex(),
        "timeMillis": time_millis,
        "logSize": log_size,
        "logRoot": log_root.hex(),
        "stateRoot": state_root.hex(),
        "transactionCount": count,
        "transactionsHash": txs_hash.hex(),
        "proposer": proposer,
        "encoded": encoded.hex(),
        "hash": sha256(encoded).hex(),
    }
    if tx_names is not None:
        h["transactionIds"] = list(tx_names)
    return h


H_EMPTY = header("empty-block", "test-chain", 1, ZERO, 1700000000000, 0, sha256(b""), ZERO, [], "k2")
LEAVES_AB = [bytes.fromhex(TX_A["logLeaf"]), bytes.fromhex(TX_B["logLeaf"])]
H_AB = header(
    "block-a-b",
    "test-chain",
    130,
    bytes.fromhex(H_EMPTY["hash"]),
    1700000000123,
    2,
    mth(LEAVES_AB),
    bytes.fromhex(STATE_TREES[4]["root"]),
    [TX_A["name"], TX_B["name"]],
    "k2",
)
H_BIG = header(
    "large-fields",
    "careledger-main",
    (1 << 40) + 5,
    sha256(b"previous block"),
    (1 << 63) - 1,
    300,
    sha256(b"log root"),
    sha256(b"state root"),
    None,
    "k2",
    extra_count=200,
    extra_hash=sha256(b"two hundred ids"),
)
BLOCK_HEADERS = [H_EMPTY, H_AB, H_BIG]
HEADER_BY_NAME = {h["name"]: h for h in BLOCK_HEADERS}


def block(name, header_name, tx_names):
    h = HEADER_BY_NAME[header_name]
    assert h["transactionCount"] == len(tx_names)
    assert h["transactionsHash"] == sha256(b"".join(bytes.fromhex(TX_BY_NAME[n]["id"]) for n in tx_names)).hex()
    header_bytes = bytes.fromhex(h["encoded"])
    signature = KEYS[h["proposer"]].sign(header_bytes)
    encoded = b"\x01" + w_bytes(header_bytes) + signature + varint(len(tx_names))
    for n in tx_names:
        encoded += w_bytes(bytes.fromhex(TX_BY_NAME[n]["encoded"]))
    return {"name": name, "header": header_name, "transactions": list(tx_names), "signature": signature.hex(), "encoded": encoded.hex()}


BLOCKS = [block("block-a-b", "block-a-b", [TX_A["name"], TX_B["name"]]), block("empty-block", "empty-block", [])]


# ---------------------------------------------------------------------------------------------
# Checkpoints and signed notes (C2SP tlog-checkpoint, signed-note)


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    return "%s\n%d\n%s\n" % (origin, size, b64(root))


def key_id(name: str, public: bytes) -> bytes:
    return sha256(name.encode("utf-8") + b"\n\x01" + public)[:4]


def vkey(name: str, public: bytes) -> str:
    return "%s+%s+%s" % (name, key_id(name, public).hex(), b64(b"\x01" + public))


def signature_line(name: str, public: bytes, signature: bytes) -> str:
    return "\u2014 %s %s\n" % (name, b64(key_id(name, public) + signature))


def checkpoint(name, origin, size, root, signer, key_name):
    key = KEYS[signer]
    text = checkpoint_text(origin, size, root)
    signature = key.sign(text.encode("utf-8"))
    return {
        "name": name,
        "origin": origin,
        "size": size,
        "rootHash": root.hex(),
        "text": text,
        "signer": signer,
        "keyName": key_name,
        "keyID": key_id(key_name, key.public).hex(),
        "vkey": vkey(key_name, key.public),
        "signedNote": text + "\n" + signature_line(key_name, key.public, signature),
    }


ORIGIN = "careledger.example/test-chain"
CHECKPOINTS = [
    checkpoint("empty-log", ORIGIN, 0, sha256(b""), "k1", ORIGIN),
    checkpoint("block-a-b-log", ORIGIN, H_AB["logSize"], bytes.fromhex(H_AB["logRoot"]), "k2", ORIGIN),
    checkpoint("large-log-other-key-name", "careledger.example/main", 1 << 40, sha256(b"log root"), "k3", "careledger.example/validator-3"),
]


# ---------------------------------------------------------------------------------------------
# Votes and quorum certificates


def vote_signing_bytes(chain_id, height, block_hash, state_root) -> bytes:
    return b"careledger-vote\n" + w_string(chain_id) + varint(height) + block_hash + state_root


def vote(name, version, header_name, validator, origin):
    h = HEADER_BY_NAME[header_name]
    key = KEYS[validator]
    block_hash, state_root = bytes.fromhex(h["hash"]), bytes.fromhex(h["stateRoot"])
    signing = vote_signing_bytes(h["chainId"], h["height"], block_hash, state_root)
    signature = key.sign(signing)
    if version == 2:
        text = checkpoint_text(origin, h["logSize"], bytes.fromhex(h["logRoot"]))
        cp_signature = key.sign(text.encode("utf-8"))
    else:  # version 1: no checkpoint signature, so no origin or checkpoint text either
        origin, text, cp_signature = "", "", b""
    encoded = (
        bytes([version])
        + w_string(h["chainId"])
        + varint(h["height"])
        + block_hash
        + state_root
        + key.public
        + signature
        + cp_signature
    )
    return {
        "name": name,
        "version": version,
        "chainId": h["chainId"],
        "height": h["height"],
        "blockHash": block_hash.hex(),
        "stateRoot": state_root.hex(),
        "validator": validator,
        "origin": origin,
        "logSize": h["logSize"],
        "logRoot": h["logRoot"],
        "signingBytes": signing.hex(),
        "signature": signature.hex(),
        "checkpointText": text,
        "checkpointSignature": cp_signature.hex(),
        "encoded": encoded.hex(),
    }


VOTES = [
    vote("vote-k1", 2, "block-a-b", "k1", ORIGIN),
    vote("vote-k2", 2, "block-a-b", "k2", ORIGIN),
    vote("vote-k3", 2, "block-a-b", "k3", ORIGIN),
    vote("vote-k4-v1", 1, "block-a-b", "k4", ORIGIN),
    vote("vote-k2-large", 2, "large-fields", "k2", "careledger.example/main"),
]
VOTE_BY_NAME = {v["name"]: v for v in VOTES}


def certificate(name, vote_names):
    votes = [VOTE_BY_NAME[n] for n in vote_names]
    ordered = sorted(votes, key=lambda v: KEYS[v["validator"]].public)  # raw key bytes, lexicographic
    encoded = b"\x01" + varint(len(ordered)) + b"".join(w_bytes(bytes.fromhex(v["encoded"])) for v in ordered)
    return {"name": name, "votes": list(vote_names), "sortedVotes": [v["name"] for v in ordered], "encoded": encoded.hex()}


# The keys sort as k2 < k1 < k4 < k3 (raw bytes); the constructor order below is not the sorted
# one (checked in self_check).
CERTIFICATES = [
    certificate("qc-block-a-b", ["vote-k1", "vote-k2", "vote-k3"]),
    certificate("qc-block-a-b-two", ["vote-k3", "vote-k1"]),
]


def cosigned_checkpoint(cert):
    """QuorumCertificate.cosignedCheckpoint: the block's checkpoint text, one line per voter (sorted)."""
    votes = [VOTE_BY_NAME[n] for n in cert["sortedVotes"]]
    text = votes[0]["checkpointText"]
    lines = "".join(signature_line(ORIGIN, KEYS[v["validator"]].public, bytes.fromhex(v["checkpointSignature"])) for v in votes)
    return text + "\n" + lines


# ---------------------------------------------------------------------------------------------
# Key envelopes


def wrapped_key_json(enc: bytes, ct: bytes, exported: bool):
    o = {"enc": b64(enc), "ct": b64(ct)}
    if exported:
        o["mode"] = "export"
    return o


def key_envelope(name, salt, keys):
    blob = salt + canonical(keys)
    return {"name": name, "salt": salt.hex(), "keys": keys, "blob": blob.hex(), "hash": sha256(blob).hex()}


KEY_ENVELOPES = [
    key_envelope(
        "two-recipients",
        bytes(range(0x10, 0x30)),
        {
            K3.did: wrapped_key_json(bytes([0xA3]) * 32, bytes(range(48)), False),
            K2.did: wrapped_key_json(bytes([0xA2]) * 32, bytes(range(100, 148)), False),
        },
    ),
    key_envelope(
        "export-mode",
        bytes([0x5A]) * 32,
        {K2.did: wrapped_key_json(bytes(range(200, 232)), bytes(range(60)), True)},
    ),
]


# ---------------------------------------------------------------------------------------------
# Receipts


def receipt(name, tx_name, status, height, leaf_index, result=None, error_code=None, error_message=None):
    tx_id = TX_BY_NAME[tx_name]["id"]
    o = {"id": tx_id, "status": status, "height": height, "leafIndex": leaf_index}
    r = {"name": name, "transactionId": tx_id, "status": status, "height": height, "leafIndex": leaf_index}
    if status == "committed":
        o["result"] = result
        r["result"] = result
    else:
        o["error"] = {"code": error_code, "message": error_message}
        r["errorCode"] = error_code
        r["errorMessage"] = error_message
    text = canonical(o)
    r["canonical"] = text.decode("utf-8")
    r["sha256"] = sha256(text).hex()
    return r


RECEIPTS = [
    receipt(
        "committed-notary",
        "notary-small",
        "committed",
        130,
        0,
        result={"hash": DOC_HASH, "label": "x\n\"y\"", "author": K1.did, "time": 1700000000123, "height": 130, "tx": TX_A["id"], "tags": ["a", None, True]},
    ),
    receipt(
        "failed-records",
        "nested-nonce-300",
        "failed",
        130,
        1,
        error_code="already_notarized",
        error_message='hash "ab…" was notarized at height 12 — é\t',
    ),
]


# ---------------------------------------------------------------------------------------------
# Self-checks


def self_check(doc):
    # Signatures.
    for t in doc["transactions"]:
        enc = bytes.fromhex(t["encoded"])
        verify(KEYS[t["signer"]].public, bytes.fromhex(t["signature"]), enc[:-64])
        assert enc[-64:].hex() == t["signature"]
        assert canonical(json.loads(json.dumps(t["payload"]))).decode() == t["payloadCanonical"]
    for b in doc["blocks"]:
        h = HEADER_BY_NAME[b["header"]]
        verify(KEYS[h["proposer"]].public, bytes.fromhex(b["signature"]), bytes.fromhex(h["encoded"]))
    for v in doc["votes"]:
        pub = KEYS[v["validator"]].public
        verify(pub, bytes.fromhex(v["signature"]), bytes.fromhex(v["signingBytes"]))
        if v["version"] == 2:
            verify(pub, bytes.fromhex(v["checkpointSignature"]), v["checkpointText"].encode())
            assert bytes.fromhex(v["encoded"])[-64:].hex() == v["checkpointSignature"]
            assert v["checkpointText"] == checkpoint_text(v["origin"], v["logSize"], bytes.fromhex(v["logRoot"]))
        else:
            assert v["checkpointSignature"] == "" and v["checkpointText"] == "" and v["origin"] == ""
        assert bytes.fromhex(v["encoded"])[0] == v["version"]
    for c in doc["checkpoints"]:
        text, sigblock = c["signedNote"].rsplit("\n\n", 1)
        text += "\n"
        assert text == c["text"]
        assert sigblock.startswith("\u2014 " + c["keyName"] + " ")
        raw = base64.b64decode(sigblock.split(" ")[2].strip(), validate=True)
        assert raw[:4].hex() == c["keyID"]
        verify(KEYS[c["signer"]].public, raw[4:], text.encode())
        vk = c["vkey"].split("+")
        assert vk[0] == c["keyName"] and vk[1] == c["keyID"] and base64.b64decode(vk[2]) == b"\x01" + KEYS[c["signer"]].public
    assert doc["checkpoints"][0]["rootHash"] == hashlib.sha256(b"").hexdigest()

    # did:key round trip (independent base58 decode).
    for k in doc["keys"]:
        assert k["did"].startswith("did:key:z6Mk")
        n = 0
        for ch in k["did"][len("did:key:z"):]:
            n = n * 58 + B58.index(ch)
        assert n.to_bytes(34, "big") == b"\xed\x01" + bytes.fromhex(k["publicKey"])

    # Varint edge cases.
    assert varint(0) == b"\x00" and varint(127) == b"\x7f" and varint(128) == b"\x80\x01" and varint(300) == b"\xac\x02"
    assert varint((1 << 64) - 1) == b"\xff" * 9 + b"\x01"
    d = bytes.fromhex(TX_BY_NAME["long-max-nonce"]["encoded"])
    assert b"\xff" * 9 + b"\x01" in d
    assert len(TX_BY_NAME["long-max-nonce"]["payloadCanonical"].encode()) > 127

    # Certificates: constructor order is not the sorted order for the three-vote one.
    qc = doc["certificates"][0]
    assert qc["votes"] != qc["sortedVotes"], "pick a non-sorted constructor order"
    pubs = [KEYS[VOTE_BY_NAME[n]["validator"]].public for n in qc["sortedVotes"]]
    assert pubs == sorted(pubs)

    # Key envelopes.
    for e in doc["keyEnvelopes"]:
        blob = bytes.fromhex(e["blob"])
        assert blob[:32].hex() == e["salt"]
        assert hashlib.sha256(blob).hexdigest() == e["hash"]
        assert json.loads(blob[32:].decode()) == e["keys"]
        for w in e["keys"].values():
            assert len(base64.b64decode(w["enc"])) == 32
            assert len(base64.b64decode(w["ct"])) == (60 if w.get("mode") == "export" else 48)
    assert any(len(e["keys"]) == 2 for e in doc["keyEnvelopes"])
    assert any(w.get("mode") == "export" for e in doc["keyEnvelopes"] for w in e["keys"].values())

    # Receipts.
    for r in doc["receipts"]:
        assert hashlib.sha256(r["canonical"].encode()).hexdigest() == r["sha256"]

    # Salted trees: public leaves as in the plain tree, private ones salted; one leaf by hand.
    plain = {l["key"]: l for l in {t["name"]: t for t in doc["stateTrees"]}["realistic-12"]["leaves"]}
    for l in doc["saltedStateTrees"][0]["leaves"]:
        private = any(l["key"].startswith(p) for p in PRIVATE_PREFIXES)
        assert (l["salt"] != "") == private and (l["keyHash"] == plain[l["key"]]["keyHash"]) == (not private), l["key"]
    one = doc["saltedStateTrees"][1]
    salt = bytes.fromhex(one["leaves"][0]["salt"])
    assert len(salt) == 32
    assert one["root"] == hashlib.sha256(
        b"\x00" + hashlib.sha256(salt + b"consent/by-id/c-1").digest() + hashlib.sha256(salt + one["entries"][0]["value"].encode()).digest()
    ).hexdigest()

    # State trees: structural invariants, independent of smt_build.
    trees = {t["name"]: t for t in doc["stateTrees"]}
    assert trees["empty"]["root"] == "00" * 32
    one = trees["one-entry"]
    kh = hashlib.sha256(one["entries"][0]["key"].encode()).digest()
    vh = hashlib.sha256(one["entries"][0]["value"].encode()).digest()
    assert one["root"] == hashlib.sha256(b"\x00" + kh + vh).hexdigest() == one["leaves"][0]["leafHash"]
    for name in ["two-entries", "two-entries-shared-prefix"]:
        t = trees[name]
        (a, b) = [(bytes.fromhex(l["keyHash"]), bytes.fromhex(l["leafHash"])) for l in t["leaves"]]
        first = next(i for i in range(256) if bit(a[0], i) != bit(b[0], i))
        lo, hi = (a, b) if bit(a[0], first) == 0 else (b, a)
        h = hashlib.sha256(b"\x01" + lo[1] + hi[1]).digest()
        for depth in range(first - 1, -1, -1):
            h = hashlib.sha256(b"\x01" + (ZERO + h if bit(a[0], depth) else h + ZERO)).digest()
        assert h.hex() == t["root"], name
        if name == "two-entries-shared-prefix":
            assert first >= 8
    # The realistic tree: recompute with membership proofs walked from each leaf (a second
    # implementation: top-down descent by bits, siblings collected, then folded back up).
    for t in doc["stateTrees"]:
        leaves = [(bytes.fromhex(l["keyHash"]), bytes.fromhex(l["leafHash"])) for l in t["leaves"]]
        assert [l[0] for l in leaves] == sorted(l[0] for l in leaves)
        for kh, lh in leaves:
            siblings, group, depth = [], leaves, 0
            while len(group) > 1:
                same = [l for l in group if bit(l[0], depth) == bit(kh, depth)]
                other = [l for l in group if bit(l[0], depth) != bit(kh, depth)]
                siblings.append(smt_root_naive(other, depth + 1))
                group, depth = same, depth + 1
            h = lh
            for d in range(len(siblings) - 1, -1, -1):
                h = sha256(b"\x01" + (siblings[d] + h if bit(kh, d) else h + siblings[d]))
            assert h.hex() == t["root"], t["name"]


def smt_root_naive(leaves, depth):
    """Compressed-subtree root by a different route: split on the first bit where the group differs."""
    if not leaves:
        return ZERO
    if len(leaves) == 1:
        return leaves[0][1]
    d = depth
    while len({bit(l[0], d) for l in leaves}) == 1:
        d += 1
    lo = [l for l in leaves if bit(l[0], d) == 0]
    hi = [l for l in leaves if bit(l[0], d) == 1]
    h = sha256(b"\x01" + smt_root_naive(lo, d + 1) + smt_root_naive(hi, d + 1))
    for k in range(d - 1, depth - 1, -1):
        h = sha256(b"\x01" + (ZERO + h if bit(leaves[0][0], k) else h + ZERO))
    return h


# Salted state leaves (Sources/Kernel/LedgerCore/StateLeaves.swift): a private key's leaf is
# (SHA-256(salt || key), SHA-256(salt || value)), salt = HMAC-SHA256(K, key),
# K = HKDF-SHA256(secret, no salt, info "careledger state salt v1", 32 bytes) (RFC 5869);
# a public key's leaf is unsalted.
SALT_SECRET = sha256(b"consortium secret of the vectors")
PRIVATE_PREFIXES = ["audit/", "consent/", "records/", "recovery/"]


def salted_state_tree(name, entries):
    k = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"careledger state salt v1").derive(SALT_SECRET)
    latest = {}
    for key, v in entries:
        latest[key] = v
    leaves = []
    for key, v in latest.items():
        private = any(key.startswith(p) for p in PRIVATE_PREFIXES)
        salt = hmac.new(k, key.encode("utf-8"), hashlib.sha256).digest() if private else b""
        kh, vh = sha256(salt + key.encode("utf-8")), sha256(salt + v.encode("utf-8"))
        leaves.append((key, salt, kh, vh, smt_leaf(kh, vh)))
    leaves.sort(key=lambda l: l[2])
    return {
        "name": name,
        "secret": SALT_SECRET.hex(),
        "privatePrefixes": PRIVATE_PREFIXES,
        "entries": [{"key": key, "value": v} for key, v in entries],
        "leaves": [{"key": key, "salt": s.hex(), "keyHash": kh.hex(), "valueHash": vh.hex(), "leafHash": lh.hex()} for key, s, kh, vh, lh in leaves],
        "root": smt_build([(kh, vh) for _, _, kh, vh, _ in leaves]).hex(),
    }


SALTED_STATE_TREES = [
    salted_state_tree("realistic-12-salted", REALISTIC),
    salted_state_tree("one-private-entry", [("consent/by-id/c-1", cjs({"patient": K3.did}))]),
]


# ---------------------------------------------------------------------------------------------


def main():
    doc = {
        "keys": [{"name": k.name, "seed": k.seed.hex(), "publicKey": k.public.hex(), "did": k.did} for k in KEYS.values()],
        "transactions": TRANSACTIONS,
        "blockHeaders": BLOCK_HEADERS,
        "blocks": BLOCKS,
        "votes": VOTES,
        "certificates": CERTIFICATES,
        "cosignedCheckpoints": [
            {"name": "qc-block-a-b", "certificate": "qc-block-a-b", "header": "block-a-b", "origin": ORIGIN, "note": cosigned_checkpoint(CERTIFICATES[0])}
        ],
        "checkpoints": CHECKPOINTS,
        "stateTrees": STATE_TREES,
        "saltedStateTrees": SALTED_STATE_TREES,
        "keyEnvelopes": KEY_ENVELOPES,
        "receipts": RECEIPTS,
    }
    self_check(doc)
    text = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print("wrote %s (%d bytes)" % (OUT, len(text.encode("utf-8"))), file=sys.stderr)


if __name__ == "__main__":
    main()
