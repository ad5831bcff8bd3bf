/// A node's attributes as read, with the names its subgraphs read from outside themselves.
struct AttributeList {
  var attributes: [Attribute] = []
  var outerUses: [NameUse] = []
}

/// Attribute values and tensor data, as `onnx.parser` reads them: `name: type = value`, where the
/// type may be left out when the value shows it (`alpha = 0.5`, `pads = [1, 1]`, `body = g (…) …`).
extension TextParser {
  /// `<name: type = value, …>` when one comes next.
  mutating func attributeList() throws(TextParseError) -> AttributeList {
    var list = AttributeList()
    guard lexer.match("<") else { return list }
    repeat {
      let name = try word("an attribute name")
      list.attributes.append(try attribute(named: name, outerUses: &list.outerUses))
    } while lexer.match(",")
    try lexer.expect(">", "closing the attributes")
    return list
  }

  /// A function's attribute with a default value; its subgraphs may not read outer values.
  mutating func attribute(named name: String) throws(TextParseError) -> Attribute {
    var outerUses: [NameUse] = []
    let a = try attribute(named: name, outerUses: &outerUses)
    if let use = outerUses.first { throw lexer.error("unknown value '\(use.name)' in the default of '\(name)'", at: use.offset) }
    return a
  }

  /// `: type = value` or `= value` after the attribute's name; `= @name` takes the enclosing
  /// function's attribute.
  mutating func attribute(named name: String, outerUses: inout [NameUse]) throws(TextParseError) -> Attribute {
    var code: Int32 = 0
    if lexer.match(":") {
      lexer.skipTrivia()
      let start = lexer.offset
      guard let typeName = lexer.identifier() else { throw lexer.expected("an attribute type such as 'ints'") }
      guard let c = TextSpelling.attributeTypeCode(typeName) else {
        throw lexer.error("unknown attribute type '\(typeName)'", at: start)
      }
      code = c
    }
    try lexer.expect("=", "before the value of attribute '\(name)'")
    if lexer.match("@") {
      return Attribute(name, .reference(type: code), refAttrName: try word("the name of a function attribute"))
    }
    let value = try nested { (p: inout TextParser) throws(TextParseError) -> Attribute.Value in
      try p.attributeValue(code, outerUses: &outerUses)
    }
    return Attribute(name, value)
  }

  /// The attribute type codes that hold one value.
  private static let singular: [Int32: Int32] = [6: 1, 7: 2, 8: 3, 9: 4, 10: 5, 12: 11, 14: 13]

  mutating func attributeValue(_ code: Int32, outerUses: inout [NameUse]) throws(TextParseError) -> Attribute.Value {
    let typeName = TextSpelling.attributeTypeName(code) ?? ""
    guard lexer.peek() == UInt8(ascii: "[") else {
      if TextParser.singular[code] != nil { throw lexer.expected("a list in '[ ]' for an attribute of type \(typeName)") }
      return try singleValue(code, outerUses: &outerUses)
    }
    if code != 0, TextParser.singular[code] == nil {
      throw lexer.expected("a single value for an attribute of type \(typeName)")
    }
    lexer.skipTrivia()
    let start = lexer.offset
    _ = lexer.match("[")
    if lexer.match("]") {
      switch code {
      case 0: throw lexer.error("an empty list needs its type, as in 'axes: ints = []'", at: start)
      case 6: return .floats([])
      case 7: return .ints([])
      case 8: return .strings([])
      case 9: return .tensors([])
      case 10: return .graphs([])
      case 12: return .sparseTensors([])
      default: return .types([])
      }
    }
    if code == 0, lexer.atNumber() { return try untypedNumbers() }
    var items: [Attribute.Value] = []
    repeat { items.append(try singleValue(TextParser.singular[code] ?? 0, outerUses: &outerUses)) } while lexer.match(",")
    try lexer.expect("]", "closing the list")
    guard let list = Self.list(items) else { throw lexer.error("a list of values of different kinds", at: start) }
    return list
  }

  /// `[1, 2]` (ints) or `[1, 2.5]` (floats) with no type given.
  private mutating func untypedNumbers() throws(TextParseError) -> Attribute.Value {
    var literals: [(Literal, Int)] = []
    repeat {
      lexer.skipTrivia()
      let offset = lexer.offset
      literals.append((try lexer.number(), offset))
    } while lexer.match(",")
    try lexer.expect("]", "closing the list")
    if literals.allSatisfy({ if case .integer = $0.0 { return true } else { return false } }) {
      var ints: [Int64] = []
      for (literal, offset) in literals {
        guard case .integer(let text) = literal, let v = Int64(text) else { throw lexer.error("integer out of range", at: offset) }
        ints.append(v)
      }
      return .ints(ints)
    }
    var floats: [Float] = []
    for (literal, offset) in literals {
      guard let f = literal.float else { throw lexer.error("float out of range", at: offset) }
      floats.append(f)
    }
    return .floats(floats)
  }

  private static func list(_ items: [Attribute.Value]) -> Attribute.Value? {
    var floats: [Float] = [], ints: [Int64] = [], strings: [[UInt8]] = [], tensors: [Tensor] = []
    var graphs: [Graph] = [], sparse: [OpaqueProto] = [], types: [ValueType] = []
    for item in items {
      switch item {
      case .float(let v): floats.append(v)
      case .int(let v): ints.append(v)
      case .string(let v): strings.append(v)
      case .tensor(let v): tensors.append(v)
      case .graph(let v): graphs.append(v)
      case .sparseTensor(let v): sparse.append(v)
      case .type(let v): types.append(v)
      default: return nil
      }
    }
    let n = items.count
    if floats.count == n { return .floats(floats) }
    if ints.count == n { return .ints(ints) }
    if strings.count == n { return .strings(strings) }
    if tensors.count == n { return .tensors(tensors) }
    if graphs.count == n { return .graphs(graphs) }
    if sparse.count == n { return .sparseTensors(sparse) }
    if types.count == n { return .types(types) }
    return nil
  }

  /// One value of the attribute type `code`, or of the type it shows when `code` is 0.
  mutating func singleValue(_ code: Int32, outerUses: inout [NameUse]) throws(TextParseError) -> Attribute.Value {
    lexer.skipTrivia()
    let start = lexer.offset
    switch code {
    case 1:
      guard lexer.atNumber() else { throw lexer.expected("a float") }
      guard let f = try lexer.number().float else { throw lexer.error("float out of range", at: start) }
      return .float(f)
    case 2: return .int(try lexer.integer("an integer"))
    case 3: return .string(try lexer.string())
    case 4:
      guard atType() else { throw lexer.expected("a tensor type such as 'float[2]'") }
      return .tensor(try tensorValue(try type()))
    case 5:
      let built = try graph(scope: .subgraph)
      outerUses += built.outerUses
      return .graph(built.graph)
    case 11: return .sparseTensor(OpaqueProto(bytes: try hexBytes()))
    case 13: return .type(try type())
    default: break
    }
    if lexer.peek() == UInt8(ascii: "\"") { return .string(try lexer.string()) }
    if lexer.atNumber() {
      switch try lexer.number() {
      case .integer(let text):
        guard let v = Int64(text) else { throw lexer.error("integer out of range", at: start) }
        return .int(v)
      case let literal:
        guard let f = literal.float else { throw lexer.error("float out of range", at: start) }
        return .float(f)
      }
    }
    if atType() {
      let t = try type()
      let next = lexer.peek()
      if next == UInt8(ascii: "{") || next == UInt8(ascii: "=") || next == UInt8(ascii: "[") || lexer.peekIdentifier() != nil {
        return .tensor(try tensorValue(t))
      }
      return .type(t)
    }
    guard lexer.peekIdentifier() != nil else { throw lexer.expected("an attribute value") }
    return try singleValue(5, outerUses: &outerUses)
  }

  /// Hex digits in a string: a sparse tensor attribute's encoded bytes (rebirth's extension).
  private mutating func hexBytes() throws(TextParseError) -> [UInt8] {
    lexer.skipTrivia()
    let start = lexer.offset
    let digits = try lexer.string()
    var bytes: [UInt8] = []
    guard digits.count % 2 == 0 else { throw lexer.error("an odd number of hex digits", at: start) }
    for i in stride(from: 0, to: digits.count, by: 2) {
      guard let byte = UInt8(String(decoding: digits[i..<(i + 2)], as: UTF8.self), radix: 16) else {
        throw lexer.error("expected hex digits", at: start)
      }
      bytes.append(byte)
    }
    return bytes
  }

  // MARK: Tensor data

  /// After a tensor attribute's type: an optional name (dropped), an optional `=`, then the data.
  mutating func tensorValue(_ type: ValueType) throws(TextParseError) -> Tensor {
    _ = try lexer.optionalName()
    _ = lexer.match("=")
    return try tensorData(type)
  }

  /// `{v1, v2, …}`, or `["location": "#digest:…"]` for a tensor printed by shape and digest.
  mutating func tensorData(_ type: ValueType) throws(TextParseError) -> Tensor {
    lexer.skipTrivia()
    let start = lexer.offset
    guard case .tensor(let dtype, let dims?) = type else { throw lexer.error("tensor data needs a tensor type with a shape", at: start) }
    var shape: [Int] = []
    for dim in dims {
      guard case .value(let v) = dim, v >= 0 else { throw lexer.error("tensor data needs a shape of known sizes", at: start) }
      shape.append(v)
    }
    if lexer.match("[") { return try placeholder(dtype, shape, start) }
    try lexer.expect("{", "opening the tensor's values")
    var elements: [TensorText.Element] = []
    if !lexer.match("}") {
      repeat {
        lexer.skipTrivia()
        let offset = lexer.offset
        let literal = lexer.peek() == UInt8(ascii: "\"") ? Literal.string(try lexer.string()) : try lexer.number()
        elements.append(TensorText.Element(literal: literal, offset: offset))
      } while lexer.match(",")
      try lexer.expect("}", "closing the tensor's values")
    }
    do {
      return try TensorText.tensor(dtype: dtype, shape: shape, elements: elements, at: start)
    } catch {
      throw lexer.error(error.message, at: error.offset)
    }
  }

  /// After `[`: `"location": "#digest:0123456789abcdef"` and `]`, which make a stand-in tensor.
  private mutating func placeholder(_ dtype: DType, _ shape: [Int], _ start: Int) throws(TextParseError) -> Tensor {
    var location: String?
    if !lexer.match("]") {
      repeat {
        let key = try text()
        try lexer.expect(":", "after the key")
        let value = try text()
        if key == "location" { location = value }
      } while lexer.match(",")
      try lexer.expect("]", "closing the tensor's location")
    }
    let prefix = "#digest:"
    guard let location, location.hasPrefix(prefix), location.utf8.count == prefix.utf8.count + 16,
      let digest = UInt64(location.dropFirst(prefix.count), radix: 16)
    else {
      throw lexer.error("external tensor data is not supported; a tensor printed by digest reads [\"location\": \"#digest:<16 hex digits>\"]", at: start)
    }
    guard let tensor = TensorText.placeholder(dtype: dtype, shape: shape, digest: digest) else {
      throw lexer.error("cannot make a stand-in \(TextSpelling.dtypeName(dtype))\(shape) tensor (too large, or no fixed-width type)", at: start)
    }
    return tensor
  }
}
