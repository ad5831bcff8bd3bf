import CZlib
import Exporters
import Foundation
import Graph
import GraphTesting
import Importers
@testable import Runtime
import Testing

/// The reader's CRC-32 (ISA-L's `crc32_gzip_refl` on Linux, zlib's elsewhere) is exactly the
/// CRC-32 of docs/tmf.md, and a changed weight byte anywhere in the data section is caught.
@Suite struct TMFChecksumTests {
  /// zlib's crc32 of `bytes`, the reference the format names.
  private func zlibCRC(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    UInt32(truncatingIfNeeded: crc32(0, bytes.baseAddress?.assumingMemoryBound(to: Bytef.self), uInt(bytes.count)))
  }

  /// Seeded bytes (xorshift).
  private func noise(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed | 1
    return (0..<count).map { _ in
      state ^= state << 13; state ^= state >> 7; state ^= state << 17
      return UInt8(truncatingIfNeeded: state >> 24)
    }
  }

  @Test func theStandardCheckValue() {
    // CRC-32/ISO-HDLC of "123456789" (the catalogue's check value, zlib.crc32 in Python).
    let crc = Array("123456789".utf8).withUnsafeBytes { tmfCRC32($0) }
    #expect(crc == 0xCBF4_3926)
    #expect([UInt8]().withUnsafeBytes { tmfCRC32($0) } == 0)
  }

  /// Every length up to 1100 bytes at every start offset modulo 16 (the folding code's head, body
  /// and tail paths), then a 5 MB buffer: the same values as zlib.
  @Test func equalsZlibOnEveryLengthAndAlignment() {
    let bytes = noise(1100 + 16, seed: 7)
    bytes.withUnsafeBytes { all in
      for start in 0..<16 {
        for length in 0...1100 {
          let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + length)])
          guard tmfCRC32(slice) == zlibCRC(slice) else {
            Issue.record("CRC of \(length) bytes at offset \(start): \(tmfCRC32(slice)) is not zlib's \(zlibCRC(slice))")
            return
          }
        }
      }
    }
    let big = noise(5 << 20, seed: 11)
    big.withUnsafeBytes { #expect(tmfCRC32($0) == zlibCRC($0)) }
  }

  @Test func continuesLikeZlib() {
    let bytes = noise(70_001, seed: 3)
    bytes.withUnsafeBytes { all in
      for cut in [0, 1, 63, 64, 255, 4096, 70_000, 70_001] {
        let head = UnsafeRawBufferPointer(rebasing: all[0..<cut])
        let tail = UnsafeRawBufferPointer(rebasing: all[cut...])
        #expect(tmfCRC32(tail, continuing: tmfCRC32(head)) == zlibCRC(all), "cut at \(cut)")
      }
    }
  }

  /// One bit flipped at the first, the last and seeded byte positions of the weights (every bit
  /// position in turn): the data section's checksum refuses the file, in memory and mapped.
  @Test(arguments: ["mlp.onnx", "resnet_bottleneck.onnx"])
  func aFlippedWeightByteIsCaught(fixture: String) throws {
    let model = try ONNXImporter.load(path: TestEnvironment.fixture(fixture))
    let good = try TMFWriter.serialize(model)
    let (start, length) = dataSection(good)
    #expect(length > 0)
    _ = try TMFReader.open(bytes: good)
    var positions = [start, start + length - 1, start + length / 2]
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    for _ in 0..<40 {
      state ^= state << 13; state ^= state >> 7; state ^= state << 17
      positions.append(start + Int(state % UInt64(length)))
    }
    for (i, at) in positions.enumerated() {
      var bytes = good
      bytes[at] ^= UInt8(1) << UInt8(i % 8)
      #expect(throws: TMFError(path: "<memory>", message: "section 'data': crc: checksum mismatch (the section is damaged)")) {
        try TMFReader.open(bytes: bytes)
      }
    }
    let dir = try TestEnvironment.makeTemporaryDirectory()
    let path = dir.appendingPathComponent("flipped.tmf").path
    var bytes = good
    bytes[start + length / 3] ^= 0x10
    #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
    #expect(throws: TMFError(path: path, message: "section 'data': crc: checksum mismatch (the section is damaged)")) {
      try TMFReader.open(path: path)
    }
  }

  /// The data section's file offset and length (docs/tmf.md: section kind 10).
  private func dataSection(_ b: [UInt8]) -> (Int, Int) {
    func u64(_ o: Int) -> Int { (0..<8).reduce(0) { $0 | Int(b[o + $1]) << (8 * $1) } }
    let count = u64(20) & 0xFFFF_FFFF
    for i in 0..<count where u64(64 + 32 * i) & 0xFFFF_FFFF == 10 {
      return (u64(64 + 32 * i + 8), u64(64 + 32 * i + 16))
    }
    return (0, 0)
  }
}
