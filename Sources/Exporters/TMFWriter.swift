#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import CZlib
import Graph

/// Why a model cannot be written as `.tmf`: one line, naming the node or tensor.
public struct TMFWriteError: Error, CustomStringConvertible, Equatable, Sendable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// What the writer wrote.
public struct TMFWriteSummary: Sendable, Equatable {
  public var fileSize: Int
  /// Bytes of tensor data (without alignment padding).
  public var tensorBytes: Int
  public var tensorCount: Int
  /// Node records, the subgraphs' included.
  public var nodeCount: Int
  /// The constants stored in an encoding other than raw, in file order, with their errors.
  public var encoded: [TMFEncodedTensor] = []
}

/// Writes a model as `.tmf` (docs/tmf.md): metadata tables first, then every constant's bytes in
/// one 64-byte-aligned data section, streamed from the tensors' storage without copies.
///
/// Stores If subgraphs as graph records (1.2; nested at most `TMF.maxGraphDepth` deep). Refuses
/// (with nothing written) an operator outside the `.tmf` op list (custom domains, functions, Loop
/// and Scan), string tensors and element types outside `TMF.supportedDTypes`. Weights are written raw (fp32 stays fp32) unless `weights` asks
/// for fp16, int8 or codebook (`TMFWeightEncoding`: which tensors, and how).
public enum TMFWriter {
  /// Writes `model` to exactly `path` (the caller renames a temporary file into place).
  @discardableResult
  public static func write(
    _ model: Model, to path: String, metadata: [MetadataEntry] = [], weights: TMFWeightOptions = TMFWeightOptions()
  ) throws(TMFWriteError) -> TMFWriteSummary {
    let layout = try TMFLayout(model: model, metadata: metadata, weights: weights)
    guard let file = fopen(path, "wb") else {
      throw TMFWriteError("cannot create the file: \(String(cString: strerror(errno)))")
    }
    var ok = true
    layout.emit { bytes in
      if ok, bytes.count > 0 { ok = fwrite(bytes.baseAddress, 1, bytes.count, file) == bytes.count }
    }
    ok = (fclose(file) == 0) && ok
    guard ok else { throw TMFWriteError("cannot write the file: \(String(cString: strerror(errno)))") }
    return layout.summary
  }

  /// The whole file in memory (tests and small models).
  public static func serialize(
    _ model: Model, metadata: [MetadataEntry] = [], weights: TMFWeightOptions = TMFWeightOptions()
  ) throws(TMFWriteError) -> [UInt8] {
    let layout = try TMFLayout(model: model, metadata: metadata, weights: weights)
    var out: [UInt8] = []
    out.reserveCapacity(layout.summary.fileSize)
    layout.emit { out.append(contentsOf: $0) }
    return out
  }
}

/// CRC-32 (IEEE 802.3, zlib's `crc32`), continuing from `crc`.
func tmfCRC32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
  var c = uLong(crc)
  var p = bytes.baseAddress?.assumingMemoryBound(to: Bytef.self)
  var left = bytes.count
  while left > 0, let q = p {
    let n = min(left, 1 << 30)
    c = crc32(c, q, uInt(n))
    p = q + n
    left -= n
  }
  return UInt32(truncatingIfNeeded: c)
}

/// Little-endian byte building.
extension Array where Element == UInt8 {
  mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
    Swift.withUnsafeBytes(of: value.littleEndian) { raw in
      for (i, b) in raw.enumerated() { self[offset + i] = b }
    }
  }
  mutating func append<T: FixedWidthInteger>(littleEndian value: T) {
    Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
  }
  mutating func pad(to alignment: Int) {
    while count % alignment != 0 { append(0) }
  }
}
