#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import CZlib
import Graph

#if canImport(CISAL)
  import CISAL
#endif

/// A `.tmf` file that cannot be used: the file and one line naming the section and field at fault.
public struct TMFError: Error, CustomStringConvertible, Equatable, Sendable {
  public let path: String
  public let message: String
  public init(path: String, message: String) {
    self.path = path
    self.message = message
  }
  public var description: String { "\(path): \(message)" }
}

/// A problem found while validating, before the path is known to the message.
struct TMFProblem: Error {
  let message: String
  init(_ message: String) { self.message = message }
}

/// The bytes of an opened `.tmf` file: a read-only private mapping, or (for in-memory files) a
/// copy. Constant tensors adopt slices of it; each slice's release closure holds this object, so
/// the mapping lives until the last tensor made from it dies.
final class TMFMapping: @unchecked Sendable {
  let bytes: UnsafeRawBufferPointer
  private let mapped: Bool

  init(path: String) throws(TMFProblem) {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else {
      throw TMFProblem(errno == ENOENT ? "no such file" : "cannot open: \(String(cString: strerror(errno)))")
    }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw TMFProblem("cannot read: \(String(cString: strerror(errno)))") }
    guard (info.st_mode & S_IFMT) == S_IFREG else { throw TMFProblem("not a regular file") }
    let size = Int(info.st_size)
    guard size >= TMF.headerSize else {
      throw TMFProblem("header: the file is \(size) bytes, shorter than the \(TMF.headerSize)-byte header (truncated?)")
    }
    guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
      throw TMFProblem("cannot map the file: \(String(cString: strerror(errno)))")
    }
    bytes = UnsafeRawBufferPointer(start: base, count: size)
    mapped = true
  }

  /// A copy of `source` at a 64-byte-aligned address, as a mapping would be page-aligned.
  init(copying source: [UInt8]) {
    let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(source.count, 1), alignment: 4096)
    source.withUnsafeBytes { if let s = $0.baseAddress { memory.baseAddress!.copyMemory(from: s, byteCount: source.count) } }
    bytes = UnsafeRawBufferPointer(rebasing: memory[0..<source.count])
    mapped = false
  }

  deinit {
    if mapped {
      munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count)
    } else {
      UnsafeMutableRawPointer(mutating: bytes.baseAddress)?.deallocate()
    }
  }

  /// A tensor storage over `range` of the file, keeping the mapping alive: no copy.
  func storage(_ range: Range<Int>) -> TensorStorage {
    TensorStorage(adopting: UnsafeRawBufferPointer(rebasing: bytes[range])) { [self] _ in withExtendedLifetime(self) {} }
  }
}

/// Bounds-checked little-endian loads from one region of the file; every failure names the region.
/// Field descriptions are autoclosures: the message is only built when a check fails.
struct TMFRegion {
  let bytes: UnsafeRawBufferPointer
  /// The region's offset in the file (for alignment checks).
  let fileOffset: Int
  let name: String

  var count: Int { bytes.count }

  func load<T: FixedWidthInteger>(_ offset: Int, as type: T.Type, _ field: @autoclosure () -> String) throws(TMFProblem) -> T {
    let size = MemoryLayout<T>.size
    guard offset >= 0, offset <= bytes.count, bytes.count - offset >= size else {
      throw TMFProblem("\(name): field \(field()) at byte \(offset) lies past the end of the section (\(bytes.count) bytes)")
    }
    return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
  }

  func u32(_ offset: Int, _ field: @autoclosure () -> String) throws(TMFProblem) -> UInt32 { try load(offset, as: UInt32.self, field()) }
  func u64(_ offset: Int, _ field: @autoclosure () -> String) throws(TMFProblem) -> UInt64 { try load(offset, as: UInt64.self, field()) }
  func i32(_ offset: Int, _ field: @autoclosure () -> String) throws(TMFProblem) -> Int32 { try load(offset, as: Int32.self, field()) }
  func i64(_ offset: Int, _ field: @autoclosure () -> String) throws(TMFProblem) -> Int64 { try load(offset, as: Int64.self, field()) }

  /// A sub-range, checked.
  func slice(_ start: Int, _ length: Int, _ what: @autoclosure () -> String) throws(TMFProblem) -> TMFRegion {
    guard start >= 0, length >= 0, start <= bytes.count, bytes.count - start >= length else {
      throw TMFProblem("\(name): \(what()) (bytes \(start)..+\(length)) lies past the end of the section (\(bytes.count) bytes)")
    }
    return TMFRegion(bytes: UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)]), fileOffset: fileOffset + start, name: name)
  }

  func crc32() -> UInt32 { tmfCRC32(bytes) }
}

/// The CRC-32 of docs/tmf.md (zlib's `crc32`) of `bytes`, continuing from `crc`. Where ISA-L is
/// linked (Linux), its `crc32_gzip_refl`: the same function computed by folding with carry-less
/// multiplication, several times faster than zlib's tables (for ResNet-50's 102 MB of weights,
/// about 2.5 ms against 13 ms once the pages are mapped); elsewhere zlib's. Both give equal values.
func tmfCRC32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
  guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else { return crc }
  #if canImport(CISAL)
    return crc32_gzip_refl(crc, base, UInt64(bytes.count))
  #else
    var c = uLong(crc)
    var p = base
    var left = bytes.count
    while left > 0 {
      let n = min(left, 1 << 30)
      c = CZlib.crc32(c, p, uInt(n))
      p += n
      left -= n
    }
    return UInt32(truncatingIfNeeded: c)
  #endif
}

/// A u64 field as an Int, or a problem naming it.
func tmfInt(_ value: UInt64, _ what: @autoclosure () -> String) throws(TMFProblem) -> Int {
  guard value <= UInt64(Int.max) else { throw TMFProblem("\(what()): \(value) is out of range") }
  return Int(value)
}

/// `a + b`, or a problem naming `what` on overflow.
func tmfAdd(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws(TMFProblem) -> Int {
  let (sum, overflow) = a.addingReportingOverflow(b)
  guard !overflow else { throw TMFProblem("\(what()): offset plus length overflows") }
  return sum
}

/// `a × b`, or a problem naming `what` on overflow.
func tmfMultiply(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws(TMFProblem) -> Int {
  let (product, overflow) = a.multipliedReportingOverflow(by: b)
  guard !overflow else { throw TMFProblem("\(what()): size overflows") }
  return product
}
