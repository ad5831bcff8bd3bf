// libFuzzer target for the `.tmf` reader (built by fuzz/build-tmf.sh, run by fuzz/run-tmf.sh).
//
// The reader's sources (Sources/Runtime/TMF*.swift: they need only Graph and zlib) are compiled
// into this module, so the fuzzer does not drag in the whole runtime. The property, for every input:
//   - `TMFReader.open(bytes:)` either throws a `TMFError` or returns a model;
//   - a returned model's graph passes `Graph.verify()`;
//   - if `TMFWriter.serialize` accepts the model (with the file's metadata) (it may refuse, e.g. a name it cannot store),
//     the bytes open again, verify again, and print the same graph text.
// Anything else is a bug: a broken property traps through `fatalError` (libFuzzer saves the
// input as a crash), and so does a memory error (AddressSanitizer) or a Swift runtime trap.
//
// The same property is checked without libFuzzer by Tests/TMFTests/TMFFuzzRegressionTests.swift.

import CZlib
import Exporters
import Graph

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

private func bug(_ what: String) -> Never {
  fatalError("tmf fuzz property broken: \(what)")
}

/// Recomputes every section CRC, the section table CRC and the header CRC (docs/tmf.md), where
/// the fields in range allow it, so that mutants get past the checksums into the structural checks.
private func repairChecksums(_ b: inout [UInt8]) {
  func u32(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 | Int(b[o + 2]) << 16 | Int(b[o + 3]) << 24 }
  func u64(_ o: Int) -> UInt64 { UInt64(u32(o)) | UInt64(u32(o + 4)) << 32 }
  func put(_ v: UInt32, _ o: Int) { for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
  func crc(_ start: Int, _ count: Int) -> UInt32 {
    b.withUnsafeBytes { UInt32(truncatingIfNeeded: crc32(0, $0.baseAddress!.assumingMemoryBound(to: Bytef.self) + start, uInt(count))) }
  }
  guard b.count >= 64 else { return }
  let count = u32(20), table = u64(24)
  guard count < 1024, table <= UInt64(b.count), UInt64(b.count) - table >= UInt64(count * 32) else { return }
  let t = Int(table)
  for i in 0..<count {
    let e = t + i * 32
    let off = u64(e + 8), length = u64(e + 16)
    if off <= UInt64(b.count), UInt64(b.count) - off >= length { put(crc(Int(off), Int(length)), e + 24) }
  }
  put(crc(t, count * 32), 40)
  put(crc(0, 44), 44)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  var bytes = Array(UnsafeBufferPointer(start: size == 0 ? nil : data, count: size))
  // Inputs whose size is even get their checksums repaired (the structural checks are fuzzed);
  // odd ones are read as they are (the checksum checks are).
  if size % 2 == 0 { repairChecksums(&bytes) }
  let file: TMFFile
  do {
    file = try TMFReader.open(bytes: bytes, path: "fuzz.tmf")
  } catch {
    return 0  // refused with a TMFError (the only error open throws): fine
  }
  let model = file.model
  do { try model.graph.verify() } catch { bug("an opened model does not verify: \(error)") }
  guard let written = try? TMFWriter.serialize(model, metadata: file.metadata) else { return 0 }
  let again: Model
  do {
    again = try TMFReader.open(bytes: written, path: "rewritten.tmf").model
  } catch {
    bug("the rewritten model does not open: \(error)")
  }
  do { try again.graph.verify() } catch { bug("the rewritten model does not verify: \(error)") }
  if again.text() != model.text() { bug("the rewritten model prints differently") }
  return 0
}
