extension Model {
  /// Reads a model in ONNX's textual syntax (what `Model.text()` and `onnx.printer` write): an
  /// optional `<…>` header, the main graph, then model-local functions.
  ///
  /// Values are defined before they are read; a name the main graph does not define is an error.
  /// A tensor written by digest becomes a stand-in (see `TextPrinter.swift`). Besides what the
  /// printers write, it reads what people write by hand: attributes without their type
  /// (`alpha = 0.5`, `pads = [1, 1]`), inputs with their default inline (`float[2] x = {1, 2}`),
  /// attributes after the inputs, `#` comments to the end of a line.
  public init(parsing text: String) throws(TextParseError) {
    var parser = TextParser(text)
    self = try parser.model()
  }
}

extension Graph {
  /// Reads a graph in ONNX's textual syntax (what `Graph.text()` writes and
  /// `onnx.parser.parse_graph` reads). With `allowingOuterReferences`, names the graph reads but
  /// does not define become outer references, as in a subgraph; otherwise they are errors.
  public init(parsing text: String, allowingOuterReferences: Bool = false) throws(TextParseError) {
    var parser = TextParser(text)
    self = try parser.topLevelGraph(scope: allowingOuterReferences ? .subgraph : .main)
  }
}

/// A recursive-descent parser for ONNX's textual syntax. It reads a graph's declarations and
/// nodes first and then builds the graph through the Graph API (`GraphBuilder`), so errors can
/// say "used before it is defined" rather than mistaking a misplaced value for an outer one.
/// It never traps: every malformed input ends in a `TextParseError`.
struct TextParser {
  var lexer: TextLexer
  /// How deeply graphs, types and lists are nested at the moment.
  var depth = 0
  static let maxDepth = 64

  init(_ text: String) { lexer = TextLexer(text) }

  mutating func nested<T>(_ body: (inout TextParser) throws(TextParseError) -> T) throws(TextParseError) -> T {
    guard depth < TextParser.maxDepth else { throw lexer.error("nested more than \(TextParser.maxDepth) levels deep") }
    depth += 1
    defer { depth -= 1 }
    return try body(&self)
  }

  // MARK: Models

  mutating func model() throws(TextParseError) -> Model {
    var m = Model(graph: Graph())
    if lexer.match("<") { try modelHeader(&m) }
    m.graph = try graph(scope: .main).graph
    while !lexer.atEnd() { m.functions.append(try function()) }
    return m
  }

  mutating func topLevelGraph(scope: GraphBuilder.Scope) throws(TextParseError) -> Graph {
    let g = try graph(scope: scope).graph
    guard lexer.atEnd() else { throw lexer.expected("the end of the text after the graph") }
    return g
  }

  mutating func modelHeader(_ m: inout Model) throws(TextParseError) {
    if lexer.match(">") { return }
    repeat {
      let start = lexer.offset
      guard let key = lexer.identifier() else { throw lexer.expected("a model field such as 'ir_version'") }
      try lexer.expect(":", "after '\(key)'")
      switch key {
      case "ir_version": m.irVersion = try lexer.integer("the IR version")
      case "opset_import": m.opsetImports = try opsetImports()
      case "producer_name": m.producerName = try text()
      case "producer_version": m.producerVersion = try text()
      case "domain": m.domain = try text()
      case "model_version": m.modelVersion = try lexer.integer("the model version")
      case "doc_string": m.docString = try text()
      case "metadata_props": m.metadataProps = try metadata()
      default: throw lexer.error("unknown model field '\(key)'", at: start)
      }
    } while lexer.match(",")
    try lexer.expect(">", "closing the model header")
  }

  /// `["" : 17, "com.microsoft" : 1]`
  mutating func opsetImports() throws(TextParseError) -> [OpsetImport] {
    try lexer.expect("[", "opening the operator set list")
    var imports: [OpsetImport] = []
    if lexer.match("]") { return imports }
    repeat {
      let domain = try text()
      try lexer.expect(":", "after the operator set's domain")
      imports.append(OpsetImport(domain: domain, version: try lexer.integer("an operator set version")))
    } while lexer.match(",")
    try lexer.expect("]", "closing the operator set list")
    return imports
  }

  /// `["key": "value", …]`
  mutating func metadata() throws(TextParseError) -> [MetadataEntry] {
    try lexer.expect("[", "opening the metadata list")
    var entries: [MetadataEntry] = []
    if lexer.match("]") { return entries }
    repeat {
      let key = try text()
      try lexer.expect(":", "after the metadata key")
      entries.append(MetadataEntry(key: key, value: try text()))
    } while lexer.match(",")
    try lexer.expect("]", "closing the metadata list")
    return entries
  }

  mutating func text() throws(TextParseError) -> String { String(decoding: try lexer.string(), as: UTF8.self) }

  // MARK: Functions

  mutating func function() throws(TextParseError) -> Function {
    var header = Function(name: "", domain: "", body: Graph())
    if lexer.match("<") {
      repeat {
        let start = lexer.offset
        guard let key = lexer.identifier() else { throw lexer.expected("a function field such as 'domain'") }
        try lexer.expect(":", "after '\(key)'")
        switch key {
        case "domain": header.domain = try text()
        case "overload": header.overload = try text()
        case "opset_import": header.opsetImports = try opsetImports()
        case "doc_string": header.docString = try text()
        default: throw lexer.error("unknown function field '\(key)'", at: start)
        }
      } while lexer.match(",")
      try lexer.expect(">", "closing the function header")
    }
    let name = try lexer.name("a function name")
    if lexer.match("<") {
      repeat {
        let attributeName = try word("an attribute name")
        if lexer.peek() == UInt8(ascii: ":") || lexer.peek() == UInt8(ascii: "=") {
          header.attributeDefaults.append(try attribute(named: attributeName))
        } else {
          header.attributeNames.append(attributeName)
        }
      } while lexer.match(",")
      try lexer.expect(">", "closing the function's attributes")
    }
    var syntax = GraphSyntax(name: name)
    try signature(&syntax, allowDefaults: false)
    var f = Function(name: name, domain: header.domain, body: try GraphBuilder.build(syntax, scope: .function, lexer).graph)
    f.overload = header.overload
    f.opsetImports = header.opsetImports
    f.docString = header.docString
    f.attributeNames = header.attributeNames
    f.attributeDefaults = header.attributeDefaults
    return f
  }

  // MARK: Graphs

  /// `name (inputs) => (outputs) <declarations> { nodes }`, built.
  mutating func graph(scope: GraphBuilder.Scope) throws(TextParseError) -> GraphBuilder.Built {
    try nested { (p: inout TextParser) throws(TextParseError) -> GraphBuilder.Built in
      var syntax = GraphSyntax(name: try p.lexer.name("a graph name"))
      try p.signature(&syntax, allowDefaults: true)
      return try GraphBuilder.build(syntax, scope: scope, p.lexer)
    }
  }

  /// Everything after a graph's or function's name.
  mutating func signature(_ syntax: inout GraphSyntax, allowDefaults: Bool) throws(TextParseError) {
    try lexer.expect("(", "opening the inputs")
    if !lexer.match(")") {
      repeat { syntax.inputs.append(try declaration(allowData: allowDefaults)) } while lexer.match(",")
      try lexer.expect(")", "closing the inputs")
    }
    lexer.skipTrivia()
    let arrow = lexer.offset
    guard lexer.match("="), lexer.matchImmediately(">") else {
      lexer.offset = arrow
      throw lexer.expected("'=>' between the inputs and the outputs")
    }
    try lexer.expect("(", "opening the outputs")
    if !lexer.match(")") {
      repeat { syntax.outputs.append(try declaration(allowData: false)) } while lexer.match(",")
      try lexer.expect(")", "closing the outputs")
    }
    if lexer.match("<"), !lexer.match(">") {
      repeat { syntax.declarations.append(try declaration(allowData: true)) } while lexer.match(",")
      try lexer.expect(">", "closing the declarations")
    }
    try lexer.expect("{", "opening the nodes")
    while !lexer.match("}") {
      guard !lexer.atEnd() else { throw lexer.expected("'}' closing the nodes") }
      syntax.nodes.append(try node())
    }
  }

  /// `type name`, `name`, or with `allowData` `type name = data` (an initializer).
  mutating func declaration(allowData: Bool) throws(TextParseError) -> Declaration {
    let type = atType() ? try self.type() : nil
    lexer.skipTrivia()
    let offset = lexer.offset
    var d = Declaration(name: try lexer.name("a value name"), type: type, offset: offset)
    guard allowData, lexer.match("=") else { return d }
    guard let type else { throw lexer.error("the initializer '\(d.name)' needs a type before its name", at: d.offset) }
    d.tensor = try tensorData(type)
    return d
  }

  // MARK: Nodes

  /// `[name] outputs = domain.Op:overload <attributes> (inputs) <attributes>`
  mutating func node() throws(TextParseError) -> NodeSyntax {
    lexer.skipTrivia()
    var n = NodeSyntax(offset: lexer.offset)
    if lexer.match("[") {
      n.name = try lexer.optionalName() ?? ""
      try lexer.expect("]", "closing the node name")
    }
    n.outputs = try nameList()
    try lexer.expect("=", "after the node's outputs")
    var path = [try word("an operator type")]
    while lexer.match(".") { path.append(try word("the next part of a domain or the operator type")) }
    n.opType = path.removeLast()
    n.domain = path.joined(separator: ".")
    if lexer.match(":") { n.overload = try word("an overload name") }
    let before = try attributeList()
    try lexer.expect("(", "opening the node's inputs")
    n.inputs = try nameList()
    try lexer.expect(")", "closing the node's inputs")
    let after = before.attributes.isEmpty ? try attributeList() : AttributeList()
    n.attributes = before.attributes + after.attributes
    n.outerUses = before.outerUses + after.outerUses
    return n
  }

  /// Names separated by commas; `""`, or nothing before a comma, is an omitted one.
  mutating func nameList() throws(TextParseError) -> [NameUse] {
    var names: [NameUse] = []
    func item(_ p: inout TextParser) throws(TextParseError) -> NameUse? {
      p.lexer.skipTrivia()
      let offset = p.lexer.offset
      if let name = try p.lexer.optionalName() { return NameUse(name: name, offset: offset) }
      return p.lexer.peek() == UInt8(ascii: ",") ? NameUse(name: "", offset: offset) : nil
    }
    guard let first = try item(&self) else { return names }
    names.append(first)
    while lexer.match(",") {
      guard let next = try item(&self) else { break }
      names.append(next)
    }
    return names
  }

  /// An attribute name, operator type or overload: an identifier, or quoted (rebirth's extension).
  mutating func word(_ what: String) throws(TextParseError) -> String {
    if lexer.peek() == UInt8(ascii: "\"") { return String(decoding: try lexer.string(), as: UTF8.self) }
    guard let id = lexer.identifier() else { throw lexer.expected(what) }
    return id
  }

  // MARK: Types

  /// Whether a type comes next (an element type name or `seq`, `map`, … ).
  mutating func atType() -> Bool {
    guard let id = lexer.peekIdentifier() else { return false }
    return TextSpelling.dtype(named: id) != nil || TextSpelling.typeKeywords.contains(id)
  }

  mutating func type() throws(TextParseError) -> ValueType {
    try nested { (p: inout TextParser) throws(TextParseError) -> ValueType in try p.typeBody() }
  }

  private mutating func typeBody() throws(TextParseError) -> ValueType {
    let start = lexer.offset
    guard let id = lexer.identifier() else { throw lexer.expected("a type") }
    if let dtype = TextSpelling.dtype(named: id) { return .tensor(dtype, shape: try shape()) }
    switch id {
    case "seq", "optional":
      try lexer.expect("(", "after '\(id)'")
      let element = lexer.match(")") ? nil : try type()
      if element != nil { try lexer.expect(")", "closing '\(id)('") }
      return id == "seq" ? .sequence(element) : .optional(element)
    case "map":
      try lexer.expect("(", "after 'map'")
      let key = try elementType("a map's key type")
      let value = lexer.match(",") ? try type() : nil
      try lexer.expect(")", "closing 'map('")
      return .map(key: key, value: value)
    case "sparse_tensor":
      try lexer.expect("(", "after 'sparse_tensor'")
      let dtype = try elementType("a sparse tensor's element type")
      let dims = try shape()
      try lexer.expect(")", "closing 'sparse_tensor('")
      return .sparseTensor(dtype, shape: dims)
    case "opaque":
      try lexer.expect("(", "after 'opaque'")
      if lexer.match(")") { return .opaque(domain: "", name: "") }
      var first = [try word("an opaque type's domain or name")]
      while lexer.match(".") { first.append(try word("the next part of the opaque type's domain")) }
      var type = ValueType.opaque(domain: "", name: first.joined(separator: "."))
      if lexer.match(",") { type = .opaque(domain: first.joined(separator: "."), name: try word("an opaque type's name")) }
      try lexer.expect(")", "closing 'opaque('")
      return type
    default:
      throw lexer.error("unknown type '\(id)'", at: start)
    }
  }

  mutating func elementType(_ what: String) throws(TextParseError) -> DType {
    let start = lexer.offset
    guard let id = lexer.identifier() else { throw lexer.expected(what) }
    guard let dtype = TextSpelling.dtype(named: id) else { throw lexer.error("unknown element type '\(id)'", at: start) }
    return dtype
  }

  /// `[N,3,?]` (nil dims for `[]`, unknown rank), or nothing: a scalar.
  mutating func shape() throws(TextParseError) -> [Dim]? {
    guard lexer.match("[") else { return [] }
    if lexer.match("]") { return nil }
    var dims: [Dim] = []
    repeat {
      if lexer.match("?") {
        dims.append(.unknown)
      } else if let name = try lexer.optionalName() {
        dims.append(.param(name))
      } else {
        let start = lexer.offset
        let v = try lexer.integer("a dimension: a number, a name or '?'")
        guard let dim = Int(exactly: v) else { throw lexer.error("dimension \(v) is out of range", at: start) }
        dims.append(.value(dim))
      }
    } while lexer.match(",")
    try lexer.expect("]", "closing the shape")
    return dims
  }
}

/// A name as written, and where.
struct NameUse {
  var name: String
  var offset: Int
}

/// `type name` or `type name = data` in a graph's signature or declarations.
struct Declaration {
  var name: String
  var type: ValueType?
  var offset: Int
  var tensor: Tensor? = nil
}

/// A node as read, its names not yet resolved.
struct NodeSyntax {
  var offset: Int
  var name = ""
  var outputs: [NameUse] = []
  var opType = ""
  var domain = ""
  var overload = ""
  var inputs: [NameUse] = []
  var attributes: [Attribute] = []
  /// Names the node's subgraphs read from outside themselves, and where.
  var outerUses: [NameUse] = []
}

/// A graph or function body as read, before it is built.
struct GraphSyntax {
  var name: String
  var inputs: [Declaration] = []
  var outputs: [Declaration] = []
  var declarations: [Declaration] = []
  var nodes: [NodeSyntax] = []
}
