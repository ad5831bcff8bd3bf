import Graph

/// Graphviz DOT pictures of graphs, for `rebirth diff --dot`.
///
/// The picture shows graph B: its inputs and outputs as ellipses, each node as a box labeled
/// `op` and its name (its first output's name when it has none), and each edge labeled with the
/// shape of the value it carries when known. Initializers are left out. With a comparison, nodes
/// added in B are green and changed ones orange; nodes of A that B no longer has are dashed and
/// grey, drawn below what produced their inputs, with a dashed orange edge to the node they were
/// merged into; past `maxRemovedNodes` they are listed, counted by op type, in a note instead.
///
///     rebirth diff a.onnx b.onnx --dot diff.dot && dot -Tpng diff.dot -o diff.png
public enum Graphviz {
  public static let addedColor = "#b6e3a8"
  public static let changedColor = "#ffc46b"
  public static let removedColor = "#9a9a9a"
  public static let maxRemovedNodes = 60

  /// The DOT text of `b`, highlighted as `comparison` (of `a` with `b`) says.
  public static func dot(_ b: Graph, comparison: GraphComparison? = nil, a: Graph? = nil) -> String {
    var out = DOTText()
    out.line("digraph \(quoted(b.name.isEmpty ? "graph" : b.name)) {")
    out.line("  graph [rankdir=TB, fontname=\"Helvetica\", fontsize=10, nodesep=0.25, ranksep=0.3]")
    out.line("  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", color=\"#555555\", fontname=\"Helvetica\", fontsize=10]")
    out.line("  edge [color=\"#666666\", fontname=\"Helvetica\", fontsize=8, fontcolor=\"#555555\", arrowsize=0.6]")
    let inputKeys = graphInputs(b, &out)
    let order = b.topologicalOrder() ?? b.nodeIDs
    for id in order {
      let node = b[id]
      var attributes = "label=\(quoted(nodeLabel(node, b)))"
      if comparison?.addedInB.contains(id) == true {
        attributes += ", fillcolor=\"\(addedColor)\""
      } else if comparison?.changedInB.contains(id) == true {
        attributes += ", fillcolor=\"\(changedColor)\""
      }
      out.line("  n\(id.index) [\(attributes)]")
    }
    for id in order {
      for case let v? in b[id].inputs {
        guard let from = source(of: v, b, inputKeys) else { continue }
        out.line("  \(from) -> n\(id.index)\(edgeLabel(b[v].type))")
      }
    }
    for (i, v) in b.outputs.enumerated() {
      out.line("  o\(i) [shape=ellipse, fillcolor=\"#eeeeee\", label=\(quoted("\(b[v].name)\n\(GraphDiff.typeText(b[v].type))"))]")
      if let from = source(of: v, b, inputKeys) { out.line("  \(from) -> o\(i)") }
    }
    if let comparison, let a { removedNodes(comparison, a, b, inputKeys, &out) }
    if comparison != nil { legend(&out) }
    out.line("}")
    return out.text
  }

  private static func graphInputs(_ b: Graph, _ out: inout DOTText) -> [ValueID: String] {
    var keys: [ValueID: String] = [:]
    for (i, v) in b.inputs.enumerated() where b.constant(v) == nil {
      if case .input(default: .some) = b[v].definition { continue }  // an overridable weight
      keys[v] = "i\(i)"
      out.line("  i\(i) [shape=ellipse, fillcolor=\"#eeeeee\", label=\(quoted("\(b[v].name)\n\(GraphDiff.typeText(b[v].type))"))]")
    }
    return keys
  }

  /// The DOT node a value comes from: its producer or a graph input; nil for initializers.
  private static func source(of v: ValueID, _ g: Graph, _ inputKeys: [ValueID: String]) -> String? {
    if let p = g[v].producer { return "n\(p.index)" }
    return inputKeys[v]
  }

  /// Nodes of A without a match, dashed and grey, wired to where their inputs come from now.
  private static func removedNodes(
    _ comparison: GraphComparison, _ a: Graph, _ b: Graph, _ inputKeys: [ValueID: String], _ out: inout DOTText
  ) {
    let removed = comparison.removedFromA
    guard !removed.isEmpty else { return }
    guard removed.count <= maxRemovedNodes else {
      var counts: [String: Int] = [:]
      for r in removed { counts[GraphDiff.NodeRef(a[r.node], in: a).opType, default: 0] += 1 }
      let lines = counts.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }
      let label = "not in B (\(removed.count) nodes):\n" + lines.joined(separator: "\n")
      out.line("  removed [shape=note, style=\"filled,dashed\", fillcolor=\"#f4f4f4\", color=\"\(removedColor)\", fontcolor=\"#555555\", label=\(quoted(label))]")
      return
    }
    let isRemoved = Set(removed.map(\.node))
    let style = "style=\"rounded,dashed\", color=\"\(removedColor)\", fontcolor=\"\(removedColor)\""
    for r in removed {
      out.line("  r\(r.node.index) [label=\(quoted(nodeLabel(a[r.node], a))), \(style)]")
    }
    for r in removed {
      var seen = Set<String>()
      for case let v? in a[r.node].inputs {
        let from: String?
        if let p = a[v].producer {
          from = isRemoved.contains(p) ? "r\(p.index)" : comparison.matches[p].map { "n\($0.index)" }
        } else {
          from = b.value(named: a[v].name).flatMap { inputKeys[$0] }
        }
        guard let from, seen.insert(from).inserted else { continue }
        out.line("  \(from) -> r\(r.node.index) [style=dashed, color=\"\(removedColor)\"]")
      }
      if let target = r.mergedInto {
        out.line("  r\(r.node.index) -> n\(target.index) [style=dashed, color=\"#e08a00\", fontcolor=\"#e08a00\", label=\"merged\", constraint=false]")
      }
    }
  }

  private static func legend(_ out: inout DOTText) {
    out.line("  subgraph cluster_legend {")
    out.line("    label=\"rebirth diff\"; fontsize=9; color=\"#cccccc\"; fontcolor=\"#777777\"")
    out.line("    node [fontsize=9, height=0.25]")
    out.line("    legend_added [label=\"added\", fillcolor=\"\(addedColor)\"]")
    out.line("    legend_changed [label=\"changed\", fillcolor=\"\(changedColor)\"]")
    out.line("    legend_removed [label=\"removed\", style=\"rounded,dashed\", color=\"\(removedColor)\", fontcolor=\"\(removedColor)\"]")
    out.line("    legend_added -> legend_changed -> legend_removed [style=invis]")
    out.line("  }")
  }

  /// `Conv` over the node's name, or over `→output` when it has none.
  static func nodeLabel(_ node: Node, _ g: Graph) -> String {
    let ref = GraphDiff.NodeRef(node, in: g)
    return "\(ref.opType)\n\(ref.shortName)"
  }

  /// `[label="1×64×56×56"]` for a known tensor shape, nothing otherwise.
  private static func edgeLabel(_ type: ValueType?) -> String {
    guard let shape = type?.tensorShape else { return "" }
    let text = shape.isEmpty ? "scalar" : shape.map(\.description).joined(separator: "×")
    return " [label=\(quoted(text))]"
  }

  /// A DOT string literal; newlines become DOT's `\n` (centered lines).
  static func quoted(_ s: String) -> String {
    var out = "\""
    for c in s {
      switch c {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      default: out.append(c)
      }
    }
    return out + "\""
  }
}

/// DOT text being written, line by line.
private struct DOTText {
  var text = ""
  mutating func line(_ s: String) { text += s + "\n" }
}
