import CZlib
import Foundation

/// NumPy's `.npz` format: a zip archive with one `.npy` member per array, named `<name>.npy`.
///
///     let arrays = try NumPyArchive.read(path: "inputs.npz")   // [(name, array)], in archive order
///     let bytes = try NumPyArchive.encode([("y", y)], compression: .deflated)
///
/// Reading accepts what `numpy.savez` (stored members) and `numpy.savez_compressed` (deflated
/// members) write, ZIP64 records included; it checks every offset and length against the file,
/// each member's CRC-32, and refuses encrypted members, other compression methods, members that
/// are not `.npy`, and duplicate names. Writing produces a plain (non-ZIP64) archive, so each
/// member and the whole archive must stay under 4 GiB.
public enum NumPyArchive {
  /// How members are stored.
  public enum Compression: Sendable {
    /// As they are (`numpy.savez`).
    case stored
    /// Raw deflate (`numpy.savez_compressed`).
    case deflated
  }

  // MARK: Reading

  /// The arrays of the `.npz` file at `path`, in archive order. The error does not name the file.
  public static func read(path: String) throws(NumPyError) -> [(name: String, array: NDArray)] {
    try NumPyFile.withBytes(of: NumPyFile.readFile(path)) { (bytes) throws(NumPyError) in try decode(bytes) }
  }

  public static func decode(_ bytes: [UInt8]) throws(NumPyError) -> [(name: String, array: NDArray)] {
    try NumPyFile.withBytes(of: bytes) { (raw) throws(NumPyError) in try decode(raw) }
  }

  /// The arrays of an `.npz` file's bytes, in archive order; names without the `.npy` suffix.
  public static func decode(_ bytes: UnsafeRawBufferPointer) throws(NumPyError) -> [(name: String, array: NDArray)] {
    let entries = try centralDirectory(bytes)
    var arrays: [(name: String, array: NDArray)] = []
    var seen: Set<String> = []
    for entry in entries where !entry.name.hasSuffix("/") {
      guard entry.name.hasSuffix(".npy") else {
        throw NumPyError("member '\(entry.name)' is not a .npy array")
      }
      let name = String(entry.name.dropLast(4))
      guard seen.insert(name).inserted else { throw NumPyError("the archive holds '\(entry.name)' twice") }
      let array: NDArray
      do {
        array = try member(entry, in: bytes)
      } catch {
        throw NumPyError("member '\(entry.name)': \(error.message)")
      }
      arrays.append((name, array))
    }
    return arrays
  }

  struct Entry {
    var name: String
    var flags: UInt16
    var method: UInt16
    var crc: UInt32
    var compressedSize: Int
    var size: Int
    var localHeaderOffset: Int
  }

  /// The central directory's entries, every offset and length checked against the file.
  static func centralDirectory(_ bytes: UnsafeRawBufferPointer) throws(NumPyError) -> [Entry] {
    let r = ByteReader(bytes)
    // The end-of-central-directory record: 22 bytes plus a comment of up to 65535.
    guard bytes.count >= 22 else { throw NumPyError("not a .npz file (too short to be a zip archive)") }
    var end = -1
    var candidate = bytes.count - 22
    let lowest = max(0, bytes.count - 22 - 0xFFFF)
    while candidate >= lowest {
      if r.u32(candidate) == 0x0605_4B50 && candidate + 22 + Int(r.u16(candidate + 20)) == bytes.count {
        end = candidate
        break
      }
      candidate -= 1
    }
    guard end >= 0 else {
      if bytes.count >= 4 && r.u32(0) == 0x0403_4B50 {
        throw NumPyError("truncated: the zip archive has no end-of-central-directory record")
      }
      throw NumPyError("not a .npz file (no zip end-of-central-directory record)")
    }
    var count = Int(r.u16(end + 10))
    var directorySize = Int(r.u32(end + 12))
    var directoryOffset = Int(r.u32(end + 16))
    if count == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
      // ZIP64: a locator just before the record points at the ZIP64 end record.
      let locator = end - 20
      guard locator >= 0, r.u32(locator) == 0x0706_4B50 else { throw NumPyError("bad zip archive: ZIP64 locator missing") }
      let record = try r.offset(r.u64(locator + 8), within: bytes.count - 56)
      guard r.u32(record) == 0x0606_4B50 else { throw NumPyError("bad zip archive: ZIP64 end record missing") }
      count = try r.offset(r.u64(record + 32), within: bytes.count)
      directorySize = try r.offset(r.u64(record + 40), within: bytes.count)
      directoryOffset = try r.offset(r.u64(record + 48), within: bytes.count)
    }
    guard directoryOffset <= bytes.count, directorySize <= bytes.count - directoryOffset else {
      throw NumPyError("truncated: the central directory lies past the end of the file")
    }
    var entries: [Entry] = []
    var p = directoryOffset
    let limit = directoryOffset + directorySize
    for _ in 0..<count {
      guard p + 46 <= limit, r.u32(p) == 0x0201_4B50 else { throw NumPyError("bad zip archive: broken central directory") }
      let nameLength = Int(r.u16(p + 28)), extraLength = Int(r.u16(p + 30)), commentLength = Int(r.u16(p + 32))
      guard p + 46 + nameLength + extraLength + commentLength <= limit else {
        throw NumPyError("bad zip archive: broken central directory")
      }
      var entry = Entry(
        name: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[p + 46..<p + 46 + nameLength]), as: UTF8.self),
        flags: r.u16(p + 8), method: r.u16(p + 10), crc: r.u32(p + 16), compressedSize: Int(r.u32(p + 20)),
        size: Int(r.u32(p + 24)), localHeaderOffset: Int(r.u32(p + 42)))
      // ZIP64 extra field: the 64-bit values of the fields that hold 0xFFFFFFFF, in this order.
      var extra = p + 46 + nameLength
      let extraEnd = extra + extraLength
      while extra + 4 <= extraEnd {
        let (id, size) = (r.u16(extra), Int(r.u16(extra + 2)))
        guard extra + 4 + size <= extraEnd else { break }
        if id == 0x0001 {
          var q = extra + 4
          func next() throws(NumPyError) -> Int {
            guard q + 8 <= extra + 4 + size else { throw NumPyError("bad zip archive: short ZIP64 field") }
            defer { q += 8 }
            return try r.offset(r.u64(q), within: Int.max / 2)
          }
          if entry.size == 0xFFFF_FFFF { entry.size = try next() }
          if entry.compressedSize == 0xFFFF_FFFF { entry.compressedSize = try next() }
          if entry.localHeaderOffset == 0xFFFF_FFFF { entry.localHeaderOffset = try next() }
        }
        extra += 4 + size
      }
      entries.append(entry)
      p += 46 + nameLength + extraLength + commentLength
    }
    return entries
  }

  /// The decoded array of one member.
  static func member(_ entry: Entry, in bytes: UnsafeRawBufferPointer) throws(NumPyError) -> NDArray {
    let r = ByteReader(bytes)
    guard entry.flags & 1 == 0 else { throw NumPyError("encrypted members are not supported") }
    let local = entry.localHeaderOffset
    guard local <= bytes.count - 30, r.u32(local) == 0x0403_4B50 else {
      throw NumPyError("bad zip archive: no local header at offset \(local)")
    }
    let start = local + 30 + Int(r.u16(local + 26)) + Int(r.u16(local + 28))
    guard start <= bytes.count, entry.compressedSize <= bytes.count - start else {
      throw NumPyError("truncated: the member's data lies past the end of the file")
    }
    let data = UnsafeRawBufferPointer(rebasing: bytes[start..<start + entry.compressedSize])
    switch entry.method {
    case 0:
      guard entry.size == entry.compressedSize else { throw NumPyError("bad zip archive: a stored member's sizes differ") }
      guard crc32(of: data) == entry.crc else { throw NumPyError("CRC-32 mismatch: the data is damaged") }
      return try NumPyFile.decode(data)
    case 8:
      // Deflate expands at most about 1032 times.
      guard entry.size / 1032 <= entry.compressedSize + 1 else {
        throw NumPyError(
          "bad zip archive: the declared size \(entry.size) is impossible for \(entry.compressedSize) deflated bytes")
      }
      let inflated = try inflate(data, size: entry.size)
      guard inflated.withUnsafeBytes({ crc32(of: $0) }) == entry.crc else {
        throw NumPyError("CRC-32 mismatch: the data is damaged")
      }
      return try NumPyFile.decode(inflated)
    default:
      throw NumPyError("compression method \(entry.method) is not supported (only stored and deflated)")
    }
  }

  // MARK: Writing

  /// The bytes of an `.npz` file holding `arrays`, each as member `<name>.npy`.
  public static func encode(
    _ arrays: [(name: String, array: NDArray)], compression: Compression = .stored
  ) throws(NumPyError) -> [UInt8] {
    var out: [UInt8] = []
    var directory: [UInt8] = []
    var names: Set<String> = []
    for (name, array) in arrays {
      guard names.insert(name).inserted else { throw NumPyError("two arrays are named '\(name)'") }
      let fileName = Array((name + ".npy").utf8)
      guard fileName.count <= 0xFFFF else { throw NumPyError("the name '\(name.prefix(40))…' is too long") }
      let npy = try NumPyFile.encode(array)
      let crc = npy.withUnsafeBytes { crc32(of: $0) }
      let (method, payload): (UInt16, [UInt8])
      switch compression {
      case .stored: (method, payload) = (0, npy)
      case .deflated: (method, payload) = (8, try NumPyFile.withBytes(of: npy) { (b) throws(NumPyError) in try deflate(b) })
      }
      guard npy.count < 0xFFFF_FFFF, payload.count < 0xFFFF_FFFF, out.count < 0xFFFF_FFFF else {
        throw NumPyError("'\(name)' is too large for a .npz archive without ZIP64 (4 GiB)")
      }
      let utf8Flag: UInt16 = fileName.allSatisfy { $0 < 0x80 } ? 0 : 0x0800
      let offset = out.count
      // Local header; DOS date 1980-01-01 00:00 so that the same arrays give the same bytes.
      put32(&out, 0x0403_4B50); put16(&out, 20); put16(&out, utf8Flag); put16(&out, method)
      put16(&out, 0); put16(&out, 0x21); put32(&out, crc)
      put32(&out, UInt32(payload.count)); put32(&out, UInt32(npy.count))
      put16(&out, UInt16(fileName.count)); put16(&out, 0)
      out += fileName
      out += payload
      put32(&directory, 0x0201_4B50); put16(&directory, 20); put16(&directory, 20); put16(&directory, utf8Flag)
      put16(&directory, method); put16(&directory, 0); put16(&directory, 0x21); put32(&directory, crc)
      put32(&directory, UInt32(payload.count)); put32(&directory, UInt32(npy.count))
      put16(&directory, UInt16(fileName.count)); put16(&directory, 0); put16(&directory, 0)
      put16(&directory, 0); put16(&directory, 0); put32(&directory, 0o100644 << 16); put32(&directory, UInt32(offset))
      directory += fileName
    }
    guard arrays.count < 0xFFFF, out.count < 0xFFFF_FFFF, directory.count < 0xFFFF_FFFF else {
      throw NumPyError("too many or too large arrays for a .npz archive without ZIP64")
    }
    let directoryOffset = out.count
    out += directory
    put32(&out, 0x0605_4B50); put16(&out, 0); put16(&out, 0)
    put16(&out, UInt16(arrays.count)); put16(&out, UInt16(arrays.count))
    put32(&out, UInt32(directory.count)); put32(&out, UInt32(directoryOffset)); put16(&out, 0)
    return out
  }

  private static func put16(_ out: inout [UInt8], _ v: UInt16) {
    out.append(UInt8(v & 0xFF))
    out.append(UInt8(v >> 8))
  }

  private static func put32(_ out: inout [UInt8], _ v: UInt32) {
    for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
  }

  // MARK: zlib

  static func crc32(of bytes: UnsafeRawBufferPointer) -> UInt32 {
    var crc = CZlib.crc32(0, nil, 0)
    var p = bytes.baseAddress?.assumingMemoryBound(to: Bytef.self)
    var left = bytes.count
    while left > 0, let q = p {
      let n = min(left, Int(UInt32.max >> 1))
      crc = CZlib.crc32(crc, q, uInt(n))
      p = q + n
      left -= n
    }
    return UInt32(truncatingIfNeeded: crc)
  }

  /// Raw deflate (no zlib header), as zip members hold it.
  static func deflate(_ input: UnsafeRawBufferPointer) throws(NumPyError) -> [UInt8] {
    var stream = z_stream()
    let started = deflateInit2_(
      &stream, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
    guard started == Z_OK else { throw NumPyError("zlib: cannot start deflate") }
    defer { deflateEnd(&stream) }
    var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 64)
    let status: Int32 = out.withUnsafeMutableBytes { o in
      stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
      stream.avail_in = uInt(input.count)
      stream.next_out = o.baseAddress!.assumingMemoryBound(to: Bytef.self)
      stream.avail_out = uInt(o.count)
      return CZlib.deflate(&stream, Z_FINISH)
    }
    guard status == Z_STREAM_END else { throw NumPyError("zlib: deflate failed (\(status))") }
    out.removeLast(out.count - Int(stream.total_out))
    return out
  }

  /// Raw inflate of `input`, which must give exactly `size` bytes.
  static func inflate(_ input: UnsafeRawBufferPointer, size: Int) throws(NumPyError) -> [UInt8] {
    var stream = z_stream()
    guard inflateInit2_(&stream, -MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
      throw NumPyError("zlib: cannot start inflate")
    }
    defer { inflateEnd(&stream) }
    // One spare byte tells a stream that inflates to more than declared.
    var out = [UInt8](repeating: 0, count: size + 1)
    let chunk = Int(UInt32.max >> 1)
    let (status, produced): (Int32, Int) = out.withUnsafeMutableBytes { o in
      let outBase = o.baseAddress!.assumingMemoryBound(to: Bytef.self)
      let inBase = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
      var (inDone, outDone) = (0, 0)
      var status = Z_OK
      while status == Z_OK {
        let inChunk = min(chunk, input.count - inDone), outChunk = min(chunk, o.count - outDone)
        stream.next_in = inBase.map { $0 + inDone }
        stream.avail_in = uInt(inChunk)
        stream.next_out = outBase + outDone
        stream.avail_out = uInt(outChunk)
        status = CZlib.inflate(&stream, Z_NO_FLUSH)
        inDone += inChunk - Int(stream.avail_in)
        outDone += outChunk - Int(stream.avail_out)
        if status == Z_OK && (inChunk - Int(stream.avail_in)) == 0 && (outChunk - Int(stream.avail_out)) == 0 {
          status = Z_BUF_ERROR  // no progress: input ended early or output is full
        }
      }
      return (status, outDone)
    }
    guard status == Z_STREAM_END else {
      if produced > size {
        throw NumPyError("bad zip archive: the member inflates to more than its declared \(size) bytes")
      }
      if status == Z_BUF_ERROR { throw NumPyError("truncated: the deflated data ends early") }
      throw NumPyError("the deflated data is damaged (zlib error \(status))")
    }
    guard produced == size else {
      throw NumPyError("bad zip archive: the member inflates to \(produced) bytes, not its declared \(size)")
    }
    out.removeLast()
    return out
  }
}

/// Little-endian integers at byte offsets the caller has checked.
private struct ByteReader {
  let bytes: UnsafeRawBufferPointer
  init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

  func u16(_ i: Int) -> UInt16 { i >= 0 && i + 2 <= bytes.count ? UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8 : 0 }
  func u32(_ i: Int) -> UInt32 { UInt32(u16(i)) | UInt32(u16(i + 2)) << 16 }
  func u64(_ i: Int) -> UInt64 { UInt64(u32(i)) | UInt64(u32(i + 4)) << 32 }

  /// A 64-bit value as an offset or size no larger than `limit`.
  func offset(_ v: UInt64, within limit: Int) throws(NumPyError) -> Int {
    guard limit >= 0, v <= UInt64(limit) else {
      throw NumPyError("bad zip archive: an offset or size lies past the end of the file")
    }
    return Int(v)
  }
}
