import Graph

/// Merges a Slice of a Slice on other axes into one Slice.
///
///     t = Slice(x, s1, e1, a1, k1); y = Slice(t, s2, e2, a2, k2)
///     → y = Slice(x, s1 ++ s2, e1 ++ e2, a1 ++ a2, k1 ++ k2)
///
/// Slicing along different axes commutes and composes: each axis is cut once, by whichever Slice
/// names it, so one Slice with both lists computes the same elements in the same order. Exporters
/// emit such chains for strided views (silero-vad's STFT takes the real and imaginary halves this
/// way); onnxoptimizer calls this `fuse_consecutive_slices`.
///
/// Conditions: opset 10 or later (starts, ends, axes, steps are inputs); every one of them a
/// constant int32/int64 vector; omitted axes are 0, 1, …, omitted steps 1; negative axes are
/// resolved with the input's rank (declined when it is unknown); the two axis sets are disjoint;
/// the inner Slice's output has no other reader and is no graph output.
public struct MergeSlices: Pass {
  public static let name = "merge-slices"
  public static let summary = "Merge a Slice of a Slice on other axes into one Slice"
  public static let isExact = true
  public static let isDefault = true

  public init(options: PassOptions) {}

  public func run(_ rewriter: inout Rewriter) throws {
    guard rewriter.opset >= 10 else { return }
    rewriter.inferShapes()
    rewriter.applyGreedily([SliceOfSlice()])
  }
}

/// `Slice(Slice(x, …), …)` on disjoint axes; see ``MergeSlices``.
struct SliceOfSlice: RewritePattern {
  static let name = "slice-slice"
  static let rootOpTypes: Set<String>? = [OpType.slice]

  /// One Slice's constant parameters, axes resolved to non-negative values.
  struct Parameters {
    var starts: [Int64], ends: [Int64], axes: [Int64], steps: [Int64]
  }

  struct Match {
    let inner: Node, outer: Node
    let source: ValueID
    let merged: Parameters
  }

  func match(_ outer: Node, in graph: Graph) -> Match? {
    guard outer.outputs.count == 1, outer.output(0) != nil, let t = outer.input(0), graph.hasSingleUse(t),
      let inner = graph.producer(of: t), inner.opType == OpType.slice, OpType.isDefaultDomain(inner.domain),
      inner.outputs.count == 1, let x = inner.input(0)
    else { return nil }
    let rank = graph.shape(of: x)?.count
    guard let a = parameters(of: inner, rank: rank, in: graph), let b = parameters(of: outer, rank: rank, in: graph),
      Set(a.axes).isDisjoint(with: b.axes)
    else { return nil }
    let merged = Parameters(
      starts: a.starts + b.starts, ends: a.ends + b.ends, axes: a.axes + b.axes, steps: a.steps + b.steps)
    return Match(inner: inner, outer: outer, source: x, merged: merged)
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let base = m.outer.name.isEmpty ? rewriter.graph[m.outer.output(0)!].name : m.outer.name
    let count = m.merged.axes.count
    let values = [
      ("starts", m.merged.starts), ("ends", m.merged.ends), ("axes", m.merged.axes), ("steps", m.merged.steps),
    ].map { rewriter.addInitializer("\(base)_\($0.0)", Tensor(int64s: $0.1, shape: [count])) }
    let innerLabel = rewriter.graph.label(m.inner), outerLabel = rewriter.graph.label(m.outer)
    rewriter.setInputs(of: m.outer.id, [m.source] + values)
    return "\(innerLabel) merged into \(outerLabel) (axes \(m.merged.axes.map(String.init).joined(separator: ", ")))"
  }

  /// The constant parameters of a Slice (opset 10+), or nil.
  private func parameters(of node: Node, rank: Int?, in graph: Graph) -> Parameters? {
    guard node.inputs.count >= 3, node.inputs.count <= 5, let starts = graph.constantInts(node.input(1)),
      let ends = graph.constantInts(node.input(2)), starts.count == ends.count, !starts.isEmpty
    else { return nil }
    var axes = (0..<Int64(starts.count)).map { $0 }
    if node.inputs.count > 3, let given = node.input(3) {
      guard let values = graph.constantInts(given), values.count == starts.count else { return nil }
      axes = values
    }
    var steps = [Int64](repeating: 1, count: starts.count)
    if node.inputs.count > 4, let given = node.input(4) {
      guard let values = graph.constantInts(given), values.count == starts.count, !values.contains(0) else { return nil }
      steps = values
    }
    if axes.contains(where: { $0 < 0 }) {
      guard let rank else { return nil }
      axes = axes.map { $0 < 0 ? $0 + Int64(rank) : $0 }
    }
    let limit = Int64(rank ?? Int.max)
    guard axes.allSatisfy({ $0 >= 0 && $0 < limit }), Set(axes).count == axes.count
    else { return nil }
    return Parameters(starts: starts, ends: ends, axes: axes, steps: steps)
  }
}
