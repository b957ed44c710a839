// RFC 9162 Merkle tree proofs (§2.1.3.2 inclusion, §2.1.4.2 consistency), checked in the browser:
// leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right).
import { concat, equal, sha256 } from "./bytes.js";

export const leafHash = (data) => sha256(concat(Uint8Array.of(0), data));
export const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

function checkHashes(...hashes) {
  for (const h of hashes) if (!(h instanceof Uint8Array) || h.length !== 32) throw new Error("a hash is 32 bytes");
}

/** Throws unless `proof` proves `leaf` (a leaf hash) at `index` in the tree of `size` leaves with `root`. */
export async function verifyInclusion(index, size, leaf, proof, root) {
  checkHashes(leaf, root, ...proof);
  if (index >= size || index < 0) throw new Error("the leaf index is outside the tree");
  let fn = index, sn = size - 1, r = leaf;
  for (const p of proof) {
    if (sn === 0) throw new Error("the proof is too long");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("the proof is too short");
  if (!equal(r, root)) throw new Error("the proof does not lead to the root");
}

/** Throws unless `proof` shows the tree of `size2` leaves (`root2`) extends the one of `size1` (`root1`). */
export async function verifyConsistency(size1, size2, root1, root2, proof) {
  if (size1 > size2) throw new Error("the old tree is larger");
  if (size1 === 0) throw new Error("a consistency proof from an empty tree is not defined");
  if (size1 === size2) {
    if (proof.length) throw new Error("a proof between equal trees is empty");
    if (!equal(root1, root2)) throw new Error("equal sizes, different roots");
    return;
  }
  checkHashes(root1, root2, ...proof);
  if (!proof.length) throw new Error("the proof is empty");
  let path = proof;
  let fn = size1 - 1, sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (fn === 0) path = [root1, ...proof];  // size1 is a power of two: the old root is the first node
  let fr = path[0], sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) throw new Error("the proof is too long");
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("the proof is too short");
  if (!equal(fr, root1) || !equal(sr, root2)) throw new Error("the proof does not lead to both roots");
}
