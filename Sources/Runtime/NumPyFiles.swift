import Foundation
import Graph

/// A failure to read or write a NumPy file. The message is one line and does not name the file:
/// callers prefix the path (`x.npy: data is truncated: ...`).
public struct NumPyError: Error, Equatable, Sendable, CustomStringConvertible {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// NumPy's `.npy` format: one array, a short header, then the elements.
///
///     let x = try NumPyFile.read(path: "x.npy")
///     try NumPyFile.encode(y).write(to: URL(fileURLWithPath: "y.npy"))
///
/// Reading accepts format versions 1.0, 2.0 and 3.0, little- and big-endian data, and C-order
/// arrays of the dtypes in `NumPyFile.dtypes` (`f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1`); it refuses,
/// with a one-line error, Fortran-order arrays, pickled objects (`'O'`), structured and every other
/// dtype, a header past `maximumHeaderLength`, and truncated data. Bytes after the data are
/// ignored, as NumPy does. Bool elements other than 0 and 1 read as 1 (true). Writing produces
/// what `numpy.save` produces: version 1.0 (2.0 for a header past 64 KiB), little-endian, C order,
/// the header padded with spaces so that the data starts at a multiple of 64 bytes.
public enum NumPyFile {
  /// `\x93NUMPY`.
  static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
  /// The longest header read (NumPy's own reader stops at 10 000 bytes by default).
  public static let maximumHeaderLength = 1 << 20

  /// The NumPy type codes read and written, without byte order, and the dtype of each.
  public static let dtypes: [(code: String, dtype: DType)] = [
    ("f2", .float16), ("f4", .float), ("f8", .double),
    ("i1", .int8), ("i2", .int16), ("i4", .int32), ("i8", .int64),
    ("u1", .uint8), ("u2", .uint16), ("u4", .uint32), ("u8", .uint64),
    ("b1", .bool),
  ]

  /// The type code of `dtype` (`f4`), or nil when `.npy` files of that dtype are not supported.
  public static func code(for dtype: DType) -> String? { dtypes.first { $0.dtype == dtype }?.code }

  // MARK: Reading

  /// The array in the `.npy` file at `path`. The error message does not name the file.
  public static func read(path: String) throws(NumPyError) -> NDArray {
    try withBytes(of: readFile(path)) { (bytes) throws(NumPyError) in try decode(bytes) }
  }

  /// The array an `.npy` file's bytes hold.
  public static func decode(_ bytes: [UInt8]) throws(NumPyError) -> NDArray {
    try withBytes(of: bytes) { (raw) throws(NumPyError) in try decode(raw) }
  }

  /// The array an `.npy` file's bytes hold.
  public static func decode(_ bytes: UnsafeRawBufferPointer) throws(NumPyError) -> NDArray {
    guard bytes.count >= 8 else {
      if bytes.count < magic.count && bytes.elementsEqual(magic.prefix(bytes.count)) {
        throw NumPyError("truncated: \(bytes.count) bytes, shorter than the .npy preamble")
      }
      throw NumPyError("not a .npy file (it does not start with \\x93NUMPY)")
    }
    guard bytes.prefix(6).elementsEqual(magic) else {
      throw NumPyError("not a .npy file (it does not start with \\x93NUMPY)")
    }
    let (major, minor) = (bytes[6], bytes[7])
    let lengthSize: Int
    switch (major, minor) {
    case (1, 0): lengthSize = 2
    case (2, 0), (3, 0): lengthSize = 4
    default: throw NumPyError("unsupported .npy format version \(major).\(minor) (1.0, 2.0 and 3.0 are read)")
    }
    guard bytes.count >= 8 + lengthSize else { throw NumPyError("truncated: the header length is cut off") }
    var headerLength = 0
    for i in 0..<lengthSize { headerLength |= Int(bytes[8 + i]) << (8 * i) }
    guard headerLength <= maximumHeaderLength else {
      throw NumPyError("the header is \(headerLength) bytes long, past the limit of \(maximumHeaderLength)")
    }
    let headerStart = 8 + lengthSize
    guard bytes.count >= headerStart + headerLength else {
      throw NumPyError(
        "truncated: the header is \(headerLength) bytes long, the file has \(bytes.count - headerStart) after the preamble")
    }
    let header = try NumPyHeader(
      parsing: UnsafeRawBufferPointer(rebasing: bytes[headerStart..<headerStart + headerLength]),
      utf8: major == 3)
    let dataStart = headerStart + headerLength
    let available = bytes.count - dataStart
    guard available >= header.byteCount else {
      let what = "\(header.dtypeText) \(shapeText(header.shape))"
      throw NumPyError("truncated: the header promises \(header.byteCount) bytes of data (\(what)), the file has \(available)")
    }
    return makeArray(
      header, from: UnsafeRawBufferPointer(rebasing: bytes[dataStart..<dataStart + header.byteCount]))
  }

  /// Copies `data` into a new array, swapping bytes for data of the other byte order.
  static func makeArray(_ header: NumPyHeader, from data: UnsafeRawBufferPointer) -> NDArray {
    var array = NDArray(uninitialized: header.dtype, shape: header.shape)
    array.withUnsafeMutableBytes { (out: UnsafeMutableRawBufferPointer) in
      guard let destination = out.baseAddress, let source = data.baseAddress, out.count > 0 else { return }
      let width = header.elementSize
      if header.swapBytes && width > 1 {
        let d = destination.assumingMemoryBound(to: UInt8.self)
        let s = source.assumingMemoryBound(to: UInt8.self)
        var i = 0
        while i < out.count {
          for k in 0..<width { d[i + k] = s[i + width - 1 - k] }
          i += width
        }
      } else {
        destination.copyMemory(from: source, byteCount: out.count)
      }
      if header.dtype == .bool {
        let d = destination.assumingMemoryBound(to: UInt8.self)
        for i in 0..<out.count where d[i] > 1 { d[i] = 1 }
      }
    }
    return array
  }

  // MARK: Writing

  /// The bytes of a `.npy` file holding `array`, as `numpy.save` writes them.
  public static func encode(_ array: NDArray) throws(NumPyError) -> [UInt8] {
    guard let code = code(for: array.dtype) else {
      throw NumPyError("arrays of type \(array.dtype) cannot be written as .npy")
    }
    let order = array.elementSize == 1 ? "|" : (isLittleEndianHost ? "<" : ">")
    let dictionary = "{'descr': '\(order)\(code)', 'fortran_order': False, 'shape': \(shapeText(array.shape)), }"
    // NumPy's layout: preamble, length, dictionary, spaces, '\n', data at a multiple of 64.
    var lengthSize = 2
    var padded = paddedHeader(dictionary, preamble: 8 + lengthSize)
    if padded.utf8.count > 0xFFFF {
      lengthSize = 4
      padded = paddedHeader(dictionary, preamble: 8 + lengthSize)
    }
    var out: [UInt8] = []
    out.reserveCapacity(8 + lengthSize + padded.utf8.count + array.byteCount)
    out += magic
    out += [lengthSize == 2 ? 1 : 2, 0]
    let length = padded.utf8.count
    for i in 0..<lengthSize { out.append(UInt8(truncatingIfNeeded: length >> (8 * i))) }
    out += Array(padded.utf8)
    array.withUnsafeBytes { out += $0 }
    return out
  }

  private static func paddedHeader(_ dictionary: String, preamble: Int) -> String {
    let unpadded = preamble + dictionary.utf8.count + 1
    let padding = 64 - unpadded % 64
    return dictionary + String(repeating: " ", count: padding) + "\n"
  }

  /// Python's repr of a shape tuple: `()`, `(3,)`, `(2, 3)`.
  static func shapeText(_ shape: [Int]) -> String {
    if shape.count == 1 { return "(\(shape[0]),)" }
    return "(" + shape.map(String.init).joined(separator: ", ") + ")"
  }

  static let isLittleEndianHost = 1.littleEndian == 1

  /// `body` with the bytes of `data`.
  static func withBytes<R>(
    of data: some ContiguousBytes, _ body: (UnsafeRawBufferPointer) throws(NumPyError) -> R
  ) throws(NumPyError) -> R {
    do {
      return try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) throws -> R in try body(bytes) }
    } catch let error as NumPyError {
      throw error
    } catch {
      throw NumPyError("\(error)")
    }
  }

  /// The bytes of the file at `path`, with a one-line error that does not name it.
  static func readFile(_ path: String) throws(NumPyError) -> Data {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw NumPyError("no such file")
    }
    guard !isDirectory.boolValue else { throw NumPyError("is a directory, not a file") }
    do {
      return try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
    } catch {
      throw NumPyError("cannot read: \((error as NSError).localizedDescription)")
    }
  }
}

/// The dictionary of an `.npy` header: `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
struct NumPyHeader {
  let dtype: DType
  /// The descr as written, for messages.
  let dtypeText: String
  let elementSize: Int
  /// Whether the data's byte order differs from the host's.
  let swapBytes: Bool
  let shape: [Int]
  let byteCount: Int

  init(parsing bytes: UnsafeRawBufferPointer, utf8: Bool) throws(NumPyError) {
    // Versions 1.0 and 2.0 are latin-1, 3.0 UTF-8.
    let text =
      utf8 ? String(decoding: bytes, as: UTF8.self) : String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    var parser = PythonLiteralParser(text)
    let literal: PythonLiteral
    do { literal = try parser.parseHeader() } catch { throw NumPyError("bad header: \(error.message)") }
    guard case .dict(let entries) = literal else { throw NumPyError("bad header: not a dictionary") }
    var fields: [String: PythonLiteral] = [:]
    for (key, value) in entries { fields[key] = value }
    let keys = Set(fields.keys)
    guard keys == ["descr", "fortran_order", "shape"] else {
      let missing = Set(["descr", "fortran_order", "shape"]).subtracting(keys).sorted()
      let extra = keys.subtracting(["descr", "fortran_order", "shape"]).sorted()
      var parts: [String] = []
      if !missing.isEmpty { parts.append("lacks " + missing.map { "'\($0)'" }.joined(separator: ", ")) }
      if !extra.isEmpty { parts.append("has unknown keys " + extra.map { "'\($0)'" }.joined(separator: ", ")) }
      throw NumPyError("bad header: the dictionary \(parts.joined(separator: " and "))")
    }
    // descr
    let descr: String
    switch fields["descr"]! {
    case .string(let s): descr = s
    case .list: throw NumPyError("structured dtypes (a list descr) are not supported")
    default: throw NumPyError("bad header: 'descr' is not a string")
    }
    dtypeText = descr
    var code = Substring(descr)
    var bigEndian = !NumPyFile.isLittleEndianHost
    if let first = code.first, "<>|=".contains(first) {
      if first == "<" { bigEndian = false }
      if first == ">" { bigEndian = true }
      code = code.dropFirst()
    }
    if code.hasPrefix("O") {
      throw NumPyError("the array holds pickled Python objects (dtype '\(descr)'), which are never loaded")
    }
    guard let entry = NumPyFile.dtypes.first(where: { $0.code == code }) else {
      let supported = NumPyFile.dtypes.map(\.code).joined(separator: " ")
      throw NumPyError("unsupported dtype '\(descr)' (supported: \(supported))")
    }
    dtype = entry.dtype
    elementSize = entry.dtype.bitWidth! / 8
    swapBytes = bigEndian == NumPyFile.isLittleEndianHost && elementSize > 1
    // fortran_order
    guard case .bool(let fortran) = fields["fortran_order"]! else {
      throw NumPyError("bad header: 'fortran_order' is not True or False")
    }
    guard !fortran else {
      throw NumPyError("Fortran-order arrays are not supported (save a C-order copy: numpy.ascontiguousarray)")
    }
    // shape
    guard case .tuple(let dims) = fields["shape"]! else { throw NumPyError("bad header: 'shape' is not a tuple") }
    var shape: [Int] = []
    for dim in dims {
      guard case .int(let v) = dim, v >= 0 else {
        throw NumPyError("bad header: 'shape' holds something other than a non-negative integer")
      }
      shape.append(v)
    }
    guard let count = checkedElementCount(shape), let bytes = dtype.byteCount(elements: count),
      NDArray.canAllocate(dtype, shape: shape)
    else { throw NumPyError("bad header: shape \(NumPyFile.shapeText(shape)) is too large") }
    self.shape = shape
    byteCount = bytes
  }
}

/// The Python literals an `.npy` header uses: strings, integers, True/False/None, tuples, lists
/// and dictionaries with string keys.
indirect enum PythonLiteral {
  case string(String)
  case int(Int)
  case bool(Bool)
  case none
  case tuple([PythonLiteral])
  case list([PythonLiteral])
  case dict([(String, PythonLiteral)])
}

/// A recursive-descent reader of one Python literal (`ast.literal_eval` for the subset above).
struct PythonLiteralParser {
  private let scalars: [Unicode.Scalar]
  private var position = 0
  private static let maximumDepth = 32

  init(_ text: String) { scalars = Array(text.unicodeScalars) }

  /// The literal, which must be all of the text but whitespace.
  mutating func parseHeader() throws(NumPyError) -> PythonLiteral {
    let value = try parseValue(depth: 0)
    skipWhitespace()
    guard position == scalars.count else { throw error("unexpected text after the dictionary") }
    return value
  }

  private func error(_ what: String) -> NumPyError { NumPyError("\(what) at character \(position)") }

  private mutating func skipWhitespace() {
    while position < scalars.count, scalars[position].properties.isWhitespace { position += 1 }
  }

  private mutating func peek() -> Unicode.Scalar? {
    skipWhitespace()
    return position < scalars.count ? scalars[position] : nil
  }

  private mutating func expect(_ c: Unicode.Scalar) throws(NumPyError) {
    guard peek() == c else { throw error("expected '\(c)'") }
    position += 1
  }

  private mutating func parseValue(depth: Int) throws(NumPyError) -> PythonLiteral {
    guard depth < Self.maximumDepth else { throw error("nested too deeply") }
    guard let c = peek() else { throw error("unexpected end") }
    switch c {
    case "{":
      position += 1
      var entries: [(String, PythonLiteral)] = []
      while peek() != "}" {
        guard case .string(let key) = try parseValue(depth: depth + 1) else { throw error("a key is not a string") }
        try expect(":")
        entries.append((key, try parseValue(depth: depth + 1)))
        guard peek() == "," else { break }
        position += 1
      }
      try expect("}")
      return .dict(entries)
    case "(", "[":
      let close: Unicode.Scalar = c == "(" ? ")" : "]"
      position += 1
      var items: [PythonLiteral] = []
      var sawComma = false
      while peek() != close {
        items.append(try parseValue(depth: depth + 1))
        guard peek() == "," else { break }
        position += 1
        sawComma = true
      }
      try expect(close)
      if c == "(" && items.count == 1 && !sawComma { return items[0] }  // (x) is x
      return c == "(" ? .tuple(items) : .list(items)
    case "'", "\"":
      position += 1
      var s = String.UnicodeScalarView()
      while true {
        guard position < scalars.count else { throw error("unterminated string") }
        let ch = scalars[position]
        position += 1
        if ch == c { break }
        if ch == "\\" {
          guard position < scalars.count else { throw error("unterminated string") }
          s.append(scalars[position])
          position += 1
        } else {
          s.append(ch)
        }
      }
      return .string(String(s))
    default:
      if c == "-" || c == "+" || ("0"..."9").contains(c) {
        var negative = false
        if c == "-" || c == "+" {
          negative = c == "-"
          position += 1
        }
        var value = 0
        var digits = 0
        while position < scalars.count, ("0"..."9").contains(scalars[position]) {
          let (m, o1) = value.multipliedReportingOverflow(by: 10)
          let (a, o2) = m.addingReportingOverflow(Int(scalars[position].value - 48))
          guard !o1 && !o2 else { throw error("integer too large") }
          value = a
          digits += 1
          position += 1
        }
        guard digits > 0 else { throw error("expected digits") }
        if position < scalars.count, scalars[position] == "L" || scalars[position] == "l" { position += 1 }  // Python 2
        return .int(negative ? -value : value)
      }
      var word = ""
      while position < scalars.count, scalars[position].properties.isAlphabetic || scalars[position] == "_" {
        word.unicodeScalars.append(scalars[position])
        position += 1
      }
      switch word {
      case "True": return .bool(true)
      case "False": return .bool(false)
      case "None": return .none
      default: throw error(word.isEmpty ? "unexpected '\(c)'" : "unexpected '\(word)'")
      }
    }
  }
}
