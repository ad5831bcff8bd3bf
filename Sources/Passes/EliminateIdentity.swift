import Graph

/// Removes nodes that compute their input unchanged.
///
///     y = Identity(x)                       → x
///     y = Dropout(x)            (inference) → x
///     y = Cast<to = float>(x)   (x float)   → x
///     y = Reshape(x, s)   (y's shape is x's) → x      likewise Flatten, Squeeze, Unsqueeze, Expand
///     y = Transpose<perm = [0, 1, …]>(x)    → x
///     y = Slice(x, …)  (steps 1, shape kept) → x
///     y = Pad(x, pads = 0)                  → x
///     y = Concat(x)   y = Tile(x, 1…)       → x
///     y = Mul(x, 1)   y = Div(x, 1)   y = Add(x, 0)   y = Add(0, x)   y = Sub(x, 0)   → x
///                       (when the constant does not broadcast x to a larger shape or another dtype)
///
/// Chains of Identity, as some exporters emit, go one by one. A node whose output is a graph output
/// stays unless its input can take the output's name (a node output that is no graph output
/// itself); otherwise removing it would only put an Identity back.
public struct EliminateIdentity: Pass {
  public static let name = "eliminate-identity"
  public static let summary = "Remove Identity, inference Dropout, same-type Cast, no-op reshapes, ×1, +0 and the like"
  public static let isExact = true
  public static let isDefault = true

  public init(options: PassOptions) {}

  public func run(_ rewriter: inout Rewriter) throws {
    rewriter.inferShapes()
    rewriter.applyGreedily([ForwardNoOp()])
  }
}

/// A node whose first output equals its data input; see ``EliminateIdentity``.
struct ForwardNoOp: RewritePattern {
  static let name = "no-op"
  static let rootOpTypes: Set<String>? = [
    OpType.identity, OpType.dropout, OpType.cast, OpType.reshape, OpType.flatten, OpType.squeeze, OpType.unsqueeze,
    OpType.expand, OpType.transpose, OpType.slice, OpType.pad, OpType.concat, OpType.tile, OpType.mul, OpType.div,
    OpType.add, OpType.sub,
  ]

  struct Match {
    let node: Node
    /// The input the output equals.
    let source: ValueID
  }

  func match(_ node: Node, in graph: Graph) -> Match? {
    guard let output = node.output(0), let source = passThroughInput(of: node, in: graph),
      node.outputs.dropFirst().allSatisfy({ $0 == nil || graph[$0!].uses.isEmpty }),
      graph.canForward(output, to: source)
    else { return nil }
    return Match(node: node, source: source)
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let label = rewriter.graph.label(m.node), source = rewriter.graph[m.source].name
    rewriter.replaceAllUses(of: m.node.output(0)!, with: m.source)
    rewriter.erase(m.node.id)
    return "\(label) removed: its output equals '\(source)'"
  }

  /// The input whose value `node`'s first output equals, if it provably does.
  private func passThroughInput(of node: Node, in graph: Graph) -> ValueID? {
    guard let x = node.input(0), let y = node.output(0) else { return nil }
    let sameShape = graph.haveSameShape(x, y)
    switch node.opType {
    case OpType.identity:
      return x
    case OpType.dropout:
      // Opset 12+: a training_mode input that is not a constant false may make it drop; before
      // opset 7, is_test = 0 meant training.
      if node.attribute("is_test")?.int == 0 { return nil }
      if let mode = node.input(2), !graph.isConstant(mode, everywhere: 0) { return nil }
      return x
    case OpType.cast:
      guard let to = node.attribute("to")?.int, let from = graph.elementType(of: x), from.rawValue == to else { return nil }
      return x
    case OpType.reshape, OpType.flatten, OpType.squeeze, OpType.unsqueeze, OpType.expand:
      return sameShape ? x : nil
    case OpType.transpose:
      guard let perm = node.attribute("perm")?.ints, perm == (0..<Int64(perm.count)).map({ $0 }) else { return nil }
      return x
    case OpType.slice:
      // Steps must be 1: a reversing slice keeps the shape but not the order.
      if let steps = node.input(4), !graph.isConstant(steps, everywhere: 1) { return nil }
      return sameShape ? x : nil
    case OpType.pad:
      let pads = node.attribute("pads")?.ints ?? graph.constantInts(node.input(1))
      guard let pads, pads.allSatisfy({ $0 == 0 }) else { return nil }
      return x
    case OpType.concat:
      return node.inputs.count == 1 ? x : nil
    case OpType.tile:
      return graph.isConstant(node.input(1), everywhere: 1) ? x : nil
    case OpType.mul, OpType.div, OpType.add, OpType.sub:
      return arithmeticPassThrough(node, in: graph)
    default:
      return nil
    }
  }

  /// x·1, x/1, x+0, 0+x, x−0, when the constant broadcasts into x's shape and keeps its dtype.
  private func arithmeticPassThrough(_ node: Node, in graph: Graph) -> ValueID? {
    guard node.inputs.count == 2, let a = node.input(0), let b = node.input(1), let y = node.output(0) else { return nil }
    let neutral: Double = (node.opType == OpType.mul || node.opType == OpType.div) ? 1 : 0
    var candidates: [(x: ValueID, constant: ValueID)] = [(a, b)]
    if node.opType == OpType.mul || node.opType == OpType.add { candidates.append((b, a)) }
    for (x, c) in candidates where graph.isConstant(c, everywhere: neutral) {
      guard graph.haveSameShape(x, y), let dtype = graph.elementType(of: x), graph.elementType(of: c) == dtype else { continue }
      return x
    }
    return nil
  }
}
