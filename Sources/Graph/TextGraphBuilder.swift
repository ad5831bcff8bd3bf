/// Builds a graph from its parsed signature, declarations and nodes, through the Graph API.
///
/// Order: inputs (a declaration with data and an input's name is that input's default), then
/// typed names the graph does not define (a subgraph's outer references), then initializers in
/// the order written, then nodes in the order written, then outputs and the remaining types. A
/// name read before the node defining it is an error; a name nobody defines is an outer
/// reference in a subgraph and an error elsewhere.
enum GraphBuilder {
  enum Scope {
    /// A model's graph, or a graph read on its own: every name it reads must be defined in it.
    case main
    /// A graph held by an attribute: names it does not define are outer references.
    case subgraph
    /// A function body: every name must be defined in it.
    case function
  }

  struct Built {
    var graph: Graph
    /// The names read from an enclosing graph, and where each was read.
    var outerUses: [NameUse]
  }

  static func build(_ s: GraphSyntax, scope: Scope, _ lexer: TextLexer) throws(TextParseError) -> Built {
    var builder = Builder(graph: Graph(name: s.name), scope: scope, lexer: lexer)
    try builder.build(s)
    return Built(graph: builder.graph, outerUses: builder.outerUses)
  }

  private struct Builder {
    var graph: Graph
    let scope: Scope
    let lexer: TextLexer
    var outerUses: [NameUse] = []
    /// Every name the graph defines: inputs, initializers and node outputs.
    var defined = Set<String>()

    /// Runs a Graph API call; a duplicate name is reported at `offset`.
    @discardableResult
    mutating func add<T>(at offset: Int, _ body: (inout Graph) throws(GraphError) -> T) throws(TextParseError) -> T {
      do { return try body(&graph) } catch { throw lexer.error(error.description, at: offset) }
    }

    mutating func build(_ s: GraphSyntax) throws(TextParseError) {
      let inputNames = Set(s.inputs.map(\.name))
      defined = inputNames
      var defaults: [String: Tensor] = [:]
      var initializers: [Declaration] = []
      for d in s.declarations {
        guard let tensor = d.tensor else { continue }
        if inputNames.contains(d.name), defaults[d.name] == nil {
          defaults[d.name] = tensor
        } else {
          initializers.append(d)
          defined.insert(d.name)
        }
      }
      for n in s.nodes { for o in n.outputs where !o.name.isEmpty { defined.insert(o.name) } }
      let valueInfo = s.declarations.filter { $0.tensor == nil }

      for d in s.inputs {
        let value = d.tensor ?? defaults[d.name]
        try add(at: d.offset) { (g: inout Graph) throws(GraphError) in try g.addInput(name: d.name, type: d.type, default: value) }
      }
      try declareOuterReferences(valueInfo.filter { !defined.contains($0.name) })
      var types: [String: ValueType] = [:]
      for d in valueInfo { if let type = d.type { types[d.name] = type } }
      for d in initializers {
        guard let tensor = d.tensor else { continue }
        let type = types[d.name]
        try check(type, fits: tensor, d)
        try add(at: d.offset) { (g: inout Graph) throws(GraphError) in try g.addInitializer(name: d.name, tensor, type: type) }
      }
      for n in s.nodes { try node(n) }
      for d in s.outputs {
        let id = try resolve(NameUse(name: d.name, offset: d.offset))
        if let tensor = graph.constant(id) { try check(d.type, fits: tensor, d) }
        graph.addOutput(id)
        if let type = d.type { graph.updateValue(id) { $0.type = type } }
      }
      for d in valueInfo where defined.contains(d.name) {
        guard let type = d.type, let id = graph.value(named: d.name), graph.constant(id) == nil else { continue }
        graph.updateValue(id) { $0.type = type }
      }
    }

    /// Declared names the graph does not define: in a subgraph, its outer references.
    mutating func declareOuterReferences(_ declarations: [Declaration]) throws(TextParseError) {
      for d in declarations {
        guard scope == .subgraph else {
          throw lexer.error("'\(d.name)' is declared, but the graph does not define it", at: d.offset)
        }
        if let existing = graph.value(named: d.name) {
          if let type = d.type { graph.updateValue(existing) { $0.type = type } }
        } else {
          outerUses.append(NameUse(name: d.name, offset: d.offset))
          try add(at: d.offset) { (g: inout Graph) throws(GraphError) in try g.addOuterReference(name: d.name, type: d.type) }
        }
      }
    }

    mutating func node(_ n: NodeSyntax) throws(TextParseError) {
      var inputs: [ValueID?] = []
      for use in n.inputs { inputs.append(use.name.isEmpty ? nil : try resolve(use)) }
      for use in n.outerUses where graph.value(named: use.name) == nil {
        if defined.contains(use.name) {
          throw lexer.error("'\(use.name)' is read in a subgraph before the node defining it", at: use.offset)
        }
        guard scope == .subgraph else { throw lexer.error("unknown value '\(use.name)'", at: use.offset) }
        outerUses.append(use)  // addNode makes it an outer reference of this graph
      }
      let outputNames = n.outputs.map(\.name)
      let id: NodeID
      do {
        id = try graph.addNode(
          opType: n.opType, domain: n.domain, name: n.name, inputs: inputs, outputs: outputNames, attributes: n.attributes)
      } catch {
        var offset = n.offset
        if case .duplicateName(let name) = error, let use = n.outputs.first(where: { $0.name == name }) { offset = use.offset }
        throw lexer.error(error.description, at: offset)
      }
      if !n.overload.isEmpty { graph.updateNode(id) { $0.overload = n.overload } }
    }

    /// An initializer's declared type must agree with its data, as `Graph.verify()` requires.
    func check(_ type: ValueType?, fits tensor: Tensor, _ d: Declaration) throws(TextParseError) {
      guard case .tensor(let dtype, let dims)? = type else { return }
      let fits = dtype == tensor.dtype && (dims.map { dims in
        dims.count == tensor.shape.count && zip(dims, tensor.shape).allSatisfy { $0.value == nil || $0.value == $1 }
      } ?? true)
      guard fits else {
        throw lexer.error("'\(d.name)' is declared with a type its data (\(TextSpelling.dtypeName(tensor.dtype))\(tensor.shape)) does not have", at: d.offset)
      }
    }

    /// The value a node input or graph output names.
    mutating func resolve(_ use: NameUse) throws(TextParseError) -> ValueID {
      if let id = graph.value(named: use.name) { return id }
      if defined.contains(use.name) { throw lexer.error("'\(use.name)' is read before the node defining it", at: use.offset) }
      guard scope == .subgraph else { throw lexer.error("unknown value '\(use.name)'", at: use.offset) }
      outerUses.append(use)
      return try add(at: use.offset) { (g: inout Graph) throws(GraphError) in try g.addOuterReference(name: use.name) }
    }
  }
}
