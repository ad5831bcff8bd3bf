import Graph

/// Removes what no graph output depends on.
///
///     a = Relu(x); b = Sigmoid(x)          (only a is an output)
///     → a = Relu(x)
///
/// Live values are found backwards from the graph outputs (through node inputs and the values
/// subgraphs capture); every other node goes, then every initializer nothing reads, then the opset
/// imports no node, subgraph or function uses. Subgraphs of If, Loop and Scan are cleaned the same
/// way. Graph inputs stay even when unused: they are the model's signature. (A `value_info` entry
/// that names no value is already dropped when the model is read.)
public struct EliminateDeadCode: Pass {
  public static let name = "eliminate-dead-code"
  public static let summary = "Remove nodes, initializers and opset imports that no output depends on"
  public static let isExact = true
  public static let isDefault = true

  public init(options: PassOptions) {}

  public func run(_ rewriter: inout Rewriter) throws {
    _ = Self.cleanUp(&rewriter)
  }

  /// Removes the dead parts of the rewriter's model as one change; returns how many nodes,
  /// values and opset imports went.
  @discardableResult
  public static func cleanUp(_ rewriter: inout Rewriter) -> Int {
    var removed = 0
    rewriter.beginChange("dead-code")
    let graph = rewriter.graph
    for node in deadNodes(in: graph) {
      rewriter.erase(node)
      removed += 1
    }
    for value in rewriter.graph.initializers where rewriter.graph[value].uses.isEmpty {
      rewriter.removeValue(value)
      removed += 1
    }
    removed += cleanSubgraphs(&rewriter)
    let unusedDomains = unusedOpsetImports(rewriter.model)
    if !unusedDomains.isEmpty {
      rewriter.editModel { model in model.opsetImports.removeAll { unusedDomains.contains($0.domain) } }
      removed += unusedDomains.count
    }
    if removed == 0 {
      rewriter.discardChange()
      return 0
    }
    let change = rewriter.pendingChange!
    rewriter.commitChange("removed " + describe(nodes: change.removed, values: change.removedValues, domains: unusedDomains))
    return removed
  }

  /// Nodes no graph output depends on, consumers before producers (so each can be erased in turn).
  static func deadNodes(in graph: Graph) -> [NodeID] {
    var live = Set<NodeID>()
    var stack = graph.outputs.compactMap { graph[$0].producer }
    while let node = stack.popLast() {
      guard live.insert(node).inserted else { continue }
      for value in graph[node].inputs.compactMap({ $0 }) + graph[node].captures {
        if let producer = graph[value].producer, !live.contains(producer) { stack.append(producer) }
      }
    }
    let order = graph.topologicalOrder() ?? graph.nodeIDs
    return order.reversed().filter { !live.contains($0) }
  }

  /// Cleans the subgraphs of live nodes; returns how many nodes and values went.
  private static func cleanSubgraphs(_ rewriter: inout Rewriter) -> Int {
    var removed = 0
    for node in rewriter.graph.nodeIDs where rewriter.graph[node].attributes.contains(where: { !$0.subgraphs.isEmpty }) {
      var count = 0
      let attributes = rewriter.graph[node].attributes.map { attribute in
        var copy = attribute
        copy.value = attribute.value.mappingSubgraphs { subgraph in
          var g = subgraph
          count += removeDead(in: &g)
          return g
        }
        return copy
      }
      guard count > 0 else { continue }
      do { try rewriter.setAttributes(of: node, attributes) } catch { continue }
      removed += count
    }
    return removed
  }

  /// Removes dead nodes, unused initializers and unused outer references of a subgraph.
  static func removeDead(in graph: inout Graph) -> Int {
    var removed = 0
    for node in deadNodes(in: graph) {
      graph.removeNode(node)
      removed += 1
    }
    for value in graph.initializers + graph.outerReferences where graph[value].uses.isEmpty {
      graph.removeValue(value)
      removed += 1
    }
    return removed
  }

  /// Domains imported by the model that no node of any graph or function uses (the default domain
  /// always stays: ONNX requires it).
  static func unusedOpsetImports(_ model: Model) -> Set<String> {
    var used: Set<String> = ["", "ai.onnx"]
    func collect(_ graph: Graph) {
      for node in graph.nodeIDs {
        used.insert(graph[node].domain)
        for attribute in graph[node].attributes { for subgraph in attribute.subgraphs { collect(subgraph) } }
      }
    }
    collect(model.graph)
    for function in model.functions {
      used.insert(function.domain)
      collect(function.body)
    }
    return Set(model.opsetImports.map(\.domain)).subtracting(used)
  }

  private static func describe(nodes: [NodeSummary], values: [String], domains: Set<String>) -> String {
    var parts: [String] = []
    if !nodes.isEmpty { parts.append("\(nodes.count) dead node\(nodes.count == 1 ? "" : "s")") }
    if !values.isEmpty { parts.append("\(values.count) unused initializer\(values.count == 1 ? "" : "s")") }
    if !domains.isEmpty { parts.append("opset import\(domains.count == 1 ? "" : "s") \(domains.sorted().map { "'\($0)'" }.joined(separator: ", "))") }
    return parts.isEmpty ? "dead code in subgraphs" : parts.joined(separator: ", ")
  }
}
