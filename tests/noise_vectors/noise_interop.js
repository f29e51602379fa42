#!/usr/bin/env node
// One side of a Noise_IK_25519_ChaChaPoly_BLAKE2b handshake run by the
// independent `noise-protocol` npm package, driven over stdin/stdout so the
// C++ interop test (tests/unit/transport/noise_interop_test.cpp) can talk to it.
//
//   node noise_interop.js initiator <static secret hex> <responder static public hex> <prologue hex>
//   node noise_interop.js responder <static secret hex> <prologue hex>
//
// Commands, one per line; every command gets exactly one reply line, either
// "ok <hex>" or "error <text>". Hex may be empty.
//   write <payload>     next handshake message            -> message
//   read <message>      next handshake message from peer  -> payload
//   rs                  the remote static public key      -> key
//   hash                the handshake hash (after split)  -> h
//   enc <plaintext>     transport send, empty ad          -> ciphertext
//   dec <ciphertext>    transport receive, empty ad       -> plaintext
//   rekey_tx, rekey_rx  Rekey() on one direction          -> (empty)
'use strict'

const path = require('path')
const readline = require('readline')

const here = path.dirname(__filename)
const req = (name) => require(require.resolve(name, { paths: [here] }))

const noise = req('noise-protocol')
const dh = req('noise-protocol/dh')()
const hash = req('noise-protocol/hash')({ dh })
const cipher = req('noise-protocol/cipher')()
const cipherState = req('noise-protocol/cipher-state')({ cipher })
const symmetricState = req('noise-protocol/symmetric-state')({ hash, cipherState })
const { crypto_scalarmult_base } = req('sodium-universal') // eslint-disable-line camelcase

const MACLEN = 16

function keyPair (secretHex) {
  const secretKey = Buffer.from(secretHex, 'hex')
  const publicKey = Buffer.alloc(32)
  crypto_scalarmult_base(publicKey, secretKey)
  return { publicKey, secretKey }
}

const [role, ...args] = process.argv.slice(2)
let state
if (role === 'initiator' && args.length === 3) {
  state = noise.initialize('IK', true, Buffer.from(args[2], 'hex'), keyPair(args[0]), null,
    Buffer.from(args[1], 'hex'))
} else if (role === 'responder' && args.length === 2) {
  state = noise.initialize('IK', false, Buffer.from(args[1], 'hex'), keyPair(args[0]))
} else {
  process.stderr.write('usage: noise_interop.js initiator SK RS PROLOGUE | responder SK PROLOGUE\n')
  process.exit(2)
}

let split = null
let handshakeHash = null
let remoteStatic = null

// noise-protocol 3.0.2 returns {tx, rx} by who sent the last handshake
// message (the writer gets tx = c1), not by role. The spec (section 5.2,
// Split) says c1 carries initiator -> responder, which is also what the
// cacophony vectors check, so for IK both sides' tx/rx come back swapped.
// Reorder them by role here; the keys themselves are unchanged.
function finish (result, wroteLast) {
  if (result == null) return
  const c1 = wroteLast ? result.tx : result.rx
  const c2 = wroteLast ? result.rx : result.tx
  split = role === 'initiator' ? { tx: c1, rx: c2 } : { tx: c2, rx: c1 }
  handshakeHash = Buffer.alloc(64)
  symmetricState.getHandshakeHash(state.symmetricState, handshakeHash)
  remoteStatic = Buffer.from(state.rs)
  noise.destroy(state)
}

function run (command, hex) {
  const data = Buffer.from(hex, 'hex')
  switch (command) {
    case 'write': {
      const out = Buffer.alloc(65535)
      finish(noise.writeMessage(state, data, out), true)
      return out.subarray(0, noise.writeMessage.bytes)
    }
    case 'read': {
      const out = Buffer.alloc(65535)
      finish(noise.readMessage(state, data, out), false)
      if (remoteStatic == null && state.rs != null) remoteStatic = Buffer.from(state.rs)
      return out.subarray(0, noise.readMessage.bytes)
    }
    case 'rs':
      if (remoteStatic == null) throw new Error('no remote static key yet')
      return remoteStatic
    case 'hash':
      if (handshakeHash == null) throw new Error('handshake not complete')
      return handshakeHash
    case 'enc': {
      if (split == null) throw new Error('handshake not complete')
      const out = Buffer.alloc(data.length + MACLEN)
      cipherState.encryptWithAd(split.tx, out, Buffer.alloc(0), data)
      return out.subarray(0, cipherState.encryptWithAd.bytesWritten)
    }
    case 'dec': {
      if (split == null) throw new Error('handshake not complete')
      if (data.length < MACLEN) throw new Error('ciphertext too short')
      const out = Buffer.alloc(data.length - MACLEN)
      cipherState.decryptWithAd(split.rx, out, Buffer.alloc(0), data)
      return out.subarray(0, cipherState.decryptWithAd.bytesWritten)
    }
    case 'rekey_tx':
    case 'rekey_rx':
      if (split == null) throw new Error('handshake not complete')
      cipherState.rekey(command === 'rekey_tx' ? split.tx : split.rx)
      return Buffer.alloc(0)
    default:
      throw new Error('unknown command ' + command)
  }
}

const lines = readline.createInterface({ input: process.stdin, terminal: false })
lines.on('line', (line) => {
  const [command, hex = ''] = line.trim().split(/\s+/)
  let reply
  try {
    reply = 'ok ' + run(command, hex).toString('hex')
  } catch (err) {
    reply = 'error ' + String(err && err.message ? err.message : err).replace(/\s+/g, ' ')
  }
  process.stdout.write(reply + '\n')
})
