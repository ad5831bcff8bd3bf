/// The textual form of the IR: ONNX's own textual syntax, the one `onnx.parser` reads and
/// `onnx.printer` writes, printed deterministically so that golden tests can compare it.
///
///     <
///       ir_version: 8,
///       opset_import: ["" : 17]
///     >
///     main (float[N,3,224,224] x) => (float[N,64,112,112] y) <
///       float[64,3,7,7] w = ["location": "#digest:5c1a9e3b0d7f2468"],
///       float[2] scale = {0.5, 2.0}
///     > {
///       c = Conv <kernel_shape: ints = [7, 7], strides: ints = [2, 2]> (x, w)
///       y = Relu (c)
///     }
///
/// - The model header lists `ir_version` and `opset_import`, then `producer_name`,
///   `producer_version`, `domain`, `model_version`, `doc_string` and `metadata_props` when set.
/// - A graph is `name (inputs) => (outputs) <declarations> { nodes }`. Inputs and outputs carry
///   their types when known. Declarations are the initializers (a graph input's default first, as
///   an initializer of the input's name, the way ONNX stores it), then the types of other values
///   (`value_info`): initializers declared with a type other than their data's, outer references
///   of a subgraph, and node outputs. Nodes come in `topologicalOrder()`.
/// - Types: `float[N,3,?]` (a named, a known and an unknown dimension), `float` a scalar,
///   `float[]` a tensor of unknown rank, `seq(T)`, `map(int64, T)`, `optional(T)`,
///   `sparse_tensor(float[2,3])`, `opaque(domain, name)`.
/// - A node is `[name] out1, "" = domain.Op:overload <attributes> (in1, "", in3)`: `""` is an
///   omitted optional input or output; the name is shown when set. A node holding a subgraph
///   shows its attributes after the inputs, as `onnx.printer` does.
/// - Attributes always carry their type, `alpha: float = 0.1`, `pads: ints = [1, 1]`,
///   `value: tensor = float[2] {1.0, 2.0}`, `to: type_proto = float[N]`, `body: graph = g (…) => (…) {…}`,
///   and in a function body `alpha: float = @alpha` takes the function's attribute.
///
/// Names. Names that are not identifiers (`[A-Za-z_][A-Za-z0-9_]*`), or that could be read as a
/// type (`float`, `seq`, …) or a float (`nan`, `inf`), are written as string literals, with `\`
/// and `"` escaped by a backslash: `"/layer1/Conv_output_0"`. ONNX's parser reads that form for
/// value, node, graph, function and dimension names, so no escaping of rebirth's own is needed.
///
/// Tensor data. A tensor with at most `TextOptions.maxInlineElements` elements prints its values
/// (see `TensorText` for how each element type is spelled; floats print as the shortest literal
/// that reads back to the same bits). A larger one prints by shape and digest, in the form ONNX's
/// syntax gives a tensor whose data is stored elsewhere:
///
///     float[64,3,7,7] w = ["location": "#digest:5c1a9e3b0d7f2468"]
///
/// The digest is `Tensor.digest` in 16 hex digits; the leading `#` is ONNX's mark for data that
/// is not in a file, so `onnx.checker` accepts the model without looking for one (the data cannot
/// be loaded, of course). Reading it back gives a stand-in tensor of that type and shape whose
/// data is deterministic pseudo-random numbers seeded by the digest (`TensorText.placeholder`) and
/// which remembers the digest (`Tensor.placeholderDigest`), so it prints again exactly as it was
/// read, whatever its size. Tensors that passes compute from stand-ins print their own digests.
///
/// rebirth's own extensions, for what ONNX's syntax cannot write (`onnx.parser` refuses them or
/// reads them otherwise): quoted attribute names, operator types, overloads, domains and names of
/// subgraphs held by attributes when they are not identifiers (`"my-domain"."Op-X"`); `\xHH` for
/// string bytes that are not UTF-8; `seq()`, `optional()` and `map(int64)` for unknown element
/// types, `undefined` and `dtypeN` for element types ONNX does not name; sparse tensor attributes
/// as their encoded bytes in hex (`s: sparse_tensor = "0a02…"`). Note also that `onnx.parser`
/// accepts but drops the contents of `tensors`, `graphs` and `type_protos` attributes.
///
/// What the syntax cannot carry is not printed: doc strings other than the model's and a
/// function's, metadata other than the model's, graph quantization annotations, training info,
/// a tensor attribute's name, NaN payloads, and the declared type of an initializer declared
/// without one.
public struct TextOptions: Sendable, Equatable {
  /// Tensors with more elements than this print by shape and digest instead of by value.
  public var maxInlineElements: Int
  /// Whether to print the types of values other than graph inputs, outputs and initializers.
  public var includeValueInfo: Bool

  public init(maxInlineElements: Int = 16, includeValueInfo: Bool = true) {
    self.maxInlineElements = maxInlineElements
    self.includeValueInfo = includeValueInfo
  }
}

extension Model {
  /// The model in ONNX's textual syntax; see `TextOptions` for what is printed how.
  public func text(options: TextOptions = .init()) -> String {
    var printer = TextPrinter(options: options)
    printer.model(self)
    return printer.out
  }
}

extension Graph {
  /// The graph in ONNX's textual syntax (what `onnx.parser.parse_graph` reads).
  public func text(options: TextOptions = .init()) -> String {
    var printer = TextPrinter(options: options)
    printer.graph(self, indent: "")
    printer.out += "\n"
    return printer.out
  }
}

/// Writes the textual form; see `TextOptions` for the syntax.
struct TextPrinter {
  let options: TextOptions
  var out = ""

  // MARK: Model and functions

  mutating func model(_ m: Model) {
    var fields = ["ir_version: \(m.irVersion)", "opset_import: " + opsets(m.opsetImports)]
    if !m.producerName.isEmpty { fields.append("producer_name: " + quoted(m.producerName)) }
    if !m.producerVersion.isEmpty { fields.append("producer_version: " + quoted(m.producerVersion)) }
    if !m.domain.isEmpty { fields.append("domain: " + quoted(m.domain)) }
    if m.modelVersion != 0 { fields.append("model_version: \(m.modelVersion)") }
    if !m.docString.isEmpty { fields.append("doc_string: " + quoted(m.docString)) }
    if !m.metadataProps.isEmpty {
      let entries = m.metadataProps.map { quoted($0.key) + ": " + quoted($0.value) }
      fields.append("metadata_props: [" + entries.joined(separator: ", ") + "]")
    }
    header(fields)
    graph(m.graph, indent: "")
    out += "\n"
    for f in m.functions {
      out += "\n"
      function(f)
    }
  }

  mutating func function(_ f: Function) {
    var fields = ["domain: " + quoted(f.domain)]
    if !f.overload.isEmpty { fields.append("overload: " + quoted(f.overload)) }
    fields.append("opset_import: " + opsets(f.opsetImports))
    if !f.docString.isEmpty { fields.append("doc_string: " + quoted(f.docString)) }
    header(fields)
    out += TextSpelling.name(f.name) + " "
    let attributes = f.attributeNames.map(TextSpelling.word) + f.attributeDefaults.map { attribute($0, indent: "") }
    if !attributes.isEmpty { out += "<" + attributes.joined(separator: ", ") + "> " }
    let body = f.body
    out += "(" + body.inputs.map { valueInfo(body, $0) }.joined(separator: ", ") + ") => ("
    out += body.outputs.map { valueInfo(body, $0) }.joined(separator: ", ") + ")"
    self.body(body, indent: "")
    out += "\n"
  }

  mutating func header(_ fields: [String]) {
    out += "<\n" + fields.map { "  " + $0 }.joined(separator: ",\n") + "\n>\n"
  }

  func opsets(_ imports: [OpsetImport]) -> String {
    "[" + imports.map { quoted($0.domain) + " : \($0.version)" }.joined(separator: ", ") + "]"
  }

  // MARK: Graphs

  /// Prints `g` from its name to its closing brace, which is indented by `indent`.
  mutating func graph(_ g: Graph, indent: String) {
    out += TextSpelling.name(g.name) + " ("
    out += g.inputs.map { valueInfo(g, $0) }.joined(separator: ", ") + ") => ("
    out += g.outputs.map { valueInfo(g, $0) }.joined(separator: ", ") + ")"
    body(g, indent: indent)
  }

  /// ` <\n  declaration,\n  …\n> {\n  node\n  …\n}`, without the declarations when there are none.
  mutating func body(_ g: Graph, indent: String) {
    let order = g.topologicalOrder() ?? g.nodeIDs
    let items = declarations(g, order)
    if !items.isEmpty {
      out += " <\n" + items.map { indent + "  " + $0 }.joined(separator: ",\n") + "\n" + indent + ">"
    }
    out += " {\n"
    for node in order {
      out += indent + "  "
      self.node(g[node], in: g, indent: indent + "  ")
      out += "\n"
    }
    out += indent + "}"
  }

  func declarations(_ g: Graph, _ order: [NodeID]) -> [String] {
    var items: [String] = []
    // Initializers: graph inputs' defaults in input order, then the others in ID order.
    for id in g.inputs {
      if case .input(let tensor?) = g[id].definition { items.append(initializer(g[id].name, tensor)) }
    }
    var retyped: [ValueID] = []
    for id in g.initializers {
      guard case .initializer(let tensor) = g[id].definition else { continue }
      items.append(initializer(g[id].name, tensor))
      if let type = g[id].type, type != .tensor(tensor.dtype, shape: tensor.shape.map { .value($0) }) {
        retyped.append(id)
      }
    }
    guard options.includeValueInfo else { return items + retyped.map { valueInfo(g, $0) } }
    var typed = retyped
    typed += g.outerReferences.filter { g[$0].type != nil }
    for node in order {
      for case let output? in g[node].outputs where g[output].type != nil && !g.isGraphOutput(output) {
        typed.append(output)
      }
    }
    return items + typed.map { valueInfo(g, $0) }
  }

  /// `type name`, or `name` when the type is unknown.
  func valueInfo(_ g: Graph, _ id: ValueID) -> String {
    let name = TextSpelling.name(g[id].name)
    guard let type = g[id].type else { return name }
    return self.type(type) + " " + name
  }

  func initializer(_ name: String, _ tensor: Tensor) -> String {
    tensorType(tensor) + " " + TextSpelling.name(name) + " = " + tensorData(tensor)
  }

  // MARK: Nodes and attributes

  mutating func node(_ n: Node, in g: Graph, indent: String) {
    if !n.name.isEmpty { out += "[" + TextSpelling.name(n.name) + "] " }
    let outputs = n.outputs.map { $0.map { TextSpelling.name(g[$0].name) } ?? "\"\"" }
    out += outputs.joined(separator: ", ") + (outputs.isEmpty ? "= " : " = ")
    if !n.domain.isEmpty { out += TextSpelling.dottedName(n.domain) + "." }
    out += TextSpelling.word(n.opType)
    if !n.overload.isEmpty { out += ":" + TextSpelling.word(n.overload) }
    let inputs = " (" + n.inputs.map { $0.map { TextSpelling.name(g[$0].name) } ?? "\"\"" }.joined(separator: ", ") + ")"
    let holdsGraph = n.attributes.contains { !$0.subgraphs.isEmpty }
    if holdsGraph { out += inputs }
    if !n.attributes.isEmpty {
      out += " <" + n.attributes.map { attribute($0, indent: indent) }.joined(separator: ", ") + ">"
    }
    if !holdsGraph { out += inputs }
  }

  /// `name: type = value`; subgraphs print their nodes indented below `indent`.
  func attribute(_ a: Attribute, indent: String) -> String {
    let name = TextSpelling.word(a.name)
    var ref = a.refAttrName
    if ref == nil, case .reference = a.value { ref = "" }
    if let ref {
      let code = TextSpelling.attributeTypeCode(of: a.value)
      let typeName = TextSpelling.attributeTypeName(code).map { ": " + $0 } ?? ""
      return name + typeName + " = @" + TextSpelling.word(ref)
    }
    let typeName = TextSpelling.attributeTypeName(TextSpelling.attributeTypeCode(of: a.value)) ?? "undefined"
    return name + ": " + typeName + " = " + attributeValue(a.value, indent: indent)
  }

  func attributeValue(_ value: Attribute.Value, indent: String) -> String {
    func list(_ items: [String]) -> String { "[" + items.joined(separator: ", ") + "]" }
    switch value {
    case .float(let f): return TensorText.format(f)
    case .int(let i): return String(i)
    case .string(let s): return TextSpelling.quoted(s)
    case .tensor(let t): return tensor(t)
    case .graph(let g): return subgraph(g, indent: indent)
    case .sparseTensor(let p): return hexString(p.bytes)
    case .type(let t): return type(t)
    case .floats(let fs): return list(fs.map(TensorText.format))
    case .ints(let items): return list(items.map { String($0) })
    case .strings(let ss): return list(ss.map(TextSpelling.quoted))
    case .tensors(let ts): return list(ts.map(tensor))
    case .graphs(let gs): return list(gs.map { subgraph($0, indent: indent) })
    case .sparseTensors(let ps): return list(ps.map { hexString($0.bytes) })
    case .types(let ts): return list(ts.map(type))
    case .reference: return "@\"\""  // not reached: references print above
    }
  }

  func subgraph(_ g: Graph, indent: String) -> String {
    var printer = TextPrinter(options: options)
    printer.graph(g, indent: indent)
    return printer.out
  }

  /// A sparse tensor attribute's encoded bytes as a string of hex digits.
  func hexString(_ bytes: [UInt8]) -> String {
    let digits = bytes.flatMap { [TextSpelling.hexDigit($0 >> 4), TextSpelling.hexDigit($0 & 0xF)] }
    return "\"" + String(decoding: digits, as: UTF8.self) + "\""
  }

  // MARK: Tensors and types

  /// A tensor attribute: `float[2] {1.0, 2.0}`, or `float[64] = ["location": …]` by digest.
  func tensor(_ t: Tensor) -> String {
    tensorType(t) + (printsByDigest(t) ? " = " : " ") + tensorData(t)
  }

  func tensorType(_ t: Tensor) -> String {
    TextSpelling.dtypeName(t.dtype) + (t.shape.isEmpty ? "" : "[" + t.shape.map { String($0) }.joined(separator: ",") + "]")
  }

  /// `{v1, v2}` or `["location": "#digest:…"]`.
  func tensorData(_ t: Tensor) -> String {
    if !printsByDigest(t), let elements = TensorText.elements(of: t) { return "{" + elements.joined(separator: ", ") + "}" }
    return "[\"location\": \"#digest:" + TensorText.hex(t.placeholderDigest ?? t.digest) + "\"]"
  }

  /// Whether a tensor prints by digest: a large one, or a stand-in read from a digest.
  func printsByDigest(_ t: Tensor) -> Bool {
    t.placeholderDigest != nil || t.elementCount > options.maxInlineElements
  }

  func type(_ t: ValueType) -> String {
    switch t {
    case .tensor(let dtype, let shape): return TextSpelling.dtypeName(dtype) + self.shape(shape)
    case .sparseTensor(let dtype, let shape): return "sparse_tensor(" + TextSpelling.dtypeName(dtype) + self.shape(shape) + ")"
    case .sequence(let element): return "seq(" + (element.map(type) ?? "") + ")"
    case .optional(let element): return "optional(" + (element.map(type) ?? "") + ")"
    case .map(let key, let value): return "map(" + TextSpelling.dtypeName(key) + (value.map { ", " + type($0) } ?? "") + ")"
    case .opaque(let domain, let name):
      if domain.isEmpty { return "opaque(" + (name.isEmpty ? "" : TextSpelling.dottedName(name)) + ")" }
      return "opaque(" + TextSpelling.dottedName(domain) + ", " + (name.isEmpty ? "\"\"" : TextSpelling.word(name)) + ")"
    }
  }

  /// `[N,3,?]`; empty for a scalar; `[]` when the rank is unknown.
  func shape(_ dims: [Dim]?) -> String {
    guard let dims else { return "[]" }
    if dims.isEmpty { return "" }
    return "[" + dims.map { dim -> String in
      switch dim {
      case .value(let v): return String(v)
      case .param(let p): return TextSpelling.name(p)
      case .unknown: return "?"
      }
    }.joined(separator: ",") + "]"
  }

  func quoted(_ s: String) -> String { TextSpelling.quoted(Array(s.utf8)) }
}
