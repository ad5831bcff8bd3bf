/// How names, element types and attribute types are spelled in the textual form: the rules the
/// printer and the parser share. See `TextPrinter.swift` for the syntax as a whole.
enum TextSpelling {
  /// `[A-Za-z_][A-Za-z0-9_]*`, ASCII only: what ONNX's parser reads as an identifier.
  static func isIdentifier<S: StringProtocol>(_ s: S) -> Bool {
    var bytes = s.utf8.makeIterator()
    guard let first = bytes.next(), isIdentifierStart(first) else { return false }
    while let b = bytes.next() { guard isIdentifierPart(b) else { return false } }
    return true
  }

  static func isIdentifierStart(_ b: UInt8) -> Bool {
    (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == 0x5F
  }

  static func isIdentifierPart(_ b: UInt8) -> Bool { isIdentifierStart(b) || isDigit(b) }

  static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

  /// Words that start a type, where ONNX's parser expects an optional type before a name.
  static let typeKeywords: Set<String> = ["seq", "map", "optional", "sparse_tensor", "opaque"]

  /// `nan`, `inf` and `infinity` in any case: ONNX's parser reads them as float literals where a
  /// subgraph's name could stand.
  static func isFloatWord<S: StringProtocol>(_ s: S) -> Bool {
    let lower = s.lowercased()
    return lower == "nan" || lower == "inf" || lower == "infinity"
  }

  /// A value, graph, node, function or dimension name: bare when it is an identifier that cannot
  /// be mistaken for a type or a float, else quoted (ONNX's parser reads quoted names there).
  static func name(_ s: String) -> String {
    if isIdentifier(s), !typeKeywords.contains(s), dtype(named: s) == nil, !isFloatWord(s) { return s }
    return quoted(Array(s.utf8))
  }

  /// A string literal: `\` and `"` escaped with a backslash as ONNX's printer does; bytes that are
  /// not UTF-8 as `\xHH` (rebirth's extension: ONNX's parser would read `\x` as `x`).
  static func quoted(_ bytes: [UInt8]) -> String {
    var out: [UInt8] = [0x22]
    var i = 0
    while i < bytes.count {
      let length = utf8SequenceLength(bytes, at: i)
      if length == 0 {
        out.append(contentsOf: Array("\\x".utf8))
        out.append(hexDigit(bytes[i] >> 4))
        out.append(hexDigit(bytes[i] & 0xF))
        i += 1
        continue
      }
      if bytes[i] == 0x22 || bytes[i] == 0x5C { out.append(0x5C) }
      out.append(contentsOf: bytes[i..<(i + length)])
      i += length
    }
    out.append(0x22)
    return String(decoding: out, as: UTF8.self)
  }

  static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 0x30 + v : 0x61 + v - 10 }

  /// The length of the well-formed UTF-8 sequence starting at `i`, or 0 if there is none.
  static func utf8SequenceLength(_ bytes: [UInt8], at i: Int) -> Int {
    let b0 = bytes[i]
    if b0 < 0x80 { return 1 }
    func continuation(_ k: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool {
      i + k < bytes.count && range.contains(bytes[i + k])
    }
    switch b0 {
    case 0xC2...0xDF: return continuation(1) ? 2 : 0
    case 0xE0: return continuation(1, 0xA0...0xBF) && continuation(2) ? 3 : 0
    case 0xE1...0xEC, 0xEE...0xEF: return continuation(1) && continuation(2) ? 3 : 0
    case 0xED: return continuation(1, 0x80...0x9F) && continuation(2) ? 3 : 0
    case 0xF0: return continuation(1, 0x90...0xBF) && continuation(2) && continuation(3) ? 4 : 0
    case 0xF1...0xF3: return continuation(1) && continuation(2) && continuation(3) ? 4 : 0
    case 0xF4: return continuation(1, 0x80...0x8F) && continuation(2) && continuation(3) ? 4 : 0
    default: return 0
    }
  }

  /// A dotted name (an operator domain): bare when every part is an identifier, else quoted.
  static func dottedName(_ s: String) -> String {
    let parts = s.split(separator: ".", omittingEmptySubsequences: false)
    return parts.allSatisfy { isIdentifier($0) } ? s : quoted(Array(s.utf8))
  }

  /// An attribute name, operator type or overload: bare when an identifier (the only form ONNX's
  /// parser reads there), else quoted, which only rebirth reads.
  static func word(_ s: String) -> String { isIdentifier(s) ? s : quoted(Array(s.utf8)) }

  // MARK: Element types

  /// Element types ONNX's syntax names beyond those `DType` knows.
  private static let extraDTypeNames: [Int32: String] = [
    24: "float8e8m0", 25: "uint2", 26: "int2", 27: "float6e2m3", 28: "float6e3m2",
  ]

  /// The name of an element type: ONNX's, or `dtypeN` for a code nobody names.
  static func dtypeName(_ dtype: DType) -> String {
    if dtype.isKnown { return dtype.description }
    return extraDTypeNames[dtype.rawValue] ?? "dtype\(dtype.rawValue)"
  }

  /// The element type called `name` (`undefined` and `dtypeN` included).
  static func dtype<S: StringProtocol>(named name: S) -> DType? {
    let s = String(name)
    if let d = DType(name: s) { return d }
    if let code = extraDTypeNames.first(where: { $0.value == s })?.key { return DType(rawValue: code) }
    guard s.hasPrefix("dtype"), s.count > 5, let code = Int32(s.dropFirst(5)), code >= 0,
      String(code) == s.dropFirst(5)
    else { return nil }
    return DType(rawValue: code)
  }

  // MARK: Attribute types

  /// `AttributeProto.AttributeType` codes and their names in the syntax.
  static let attributeTypes: [(code: Int32, name: String)] = [
    (1, "float"), (2, "int"), (3, "string"), (4, "tensor"), (5, "graph"), (6, "floats"), (7, "ints"),
    (8, "strings"), (9, "tensors"), (10, "graphs"), (11, "sparse_tensor"), (12, "sparse_tensors"),
    (13, "type_proto"), (14, "type_protos"),
  ]

  static func attributeTypeName(_ code: Int32) -> String? {
    attributeTypes.first { $0.code == code }?.name
  }

  static func attributeTypeCode<S: StringProtocol>(_ name: S) -> Int32? {
    attributeTypes.first { $0.name == name }?.code
  }

  /// The attribute type code of a value.
  static func attributeTypeCode(of value: Attribute.Value) -> Int32 {
    switch value {
    case .float: return 1
    case .int: return 2
    case .string: return 3
    case .tensor: return 4
    case .graph: return 5
    case .floats: return 6
    case .ints: return 7
    case .strings: return 8
    case .tensors: return 9
    case .graphs: return 10
    case .sparseTensor: return 11
    case .sparseTensors: return 12
    case .type: return 13
    case .types: return 14
    case .reference(let type): return type
    }
  }
}
