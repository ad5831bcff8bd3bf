import Graph

/// Drops a Reshape, Flatten, Squeeze or Unsqueeze whose result only feeds a Reshape to a constant
/// shape: the last Reshape alone decides the result.
///
///     t = Reshape(x, s1)        y = Reshape(t, s2)   → y = Reshape(x, s2′)
///     t = Flatten<axis>(x)      y = Reshape(t, s2)   → y = Reshape(x, s2′)
///     t = Squeeze(x, axes)      y = Reshape(t, s2)   → y = Reshape(x, s2′)
///     t = Unsqueeze(x, axes)    y = Reshape(t, s2)   → y = Reshape(x, s2′)
///
/// The algebra: all four keep the elements in row-major order and only relabel the shape, so y is
/// the elements of x laid out in the shape s2 resolves to. That shape depends on t only through
/// the entries of s2 that refer to it: a -1 takes the element count that is left, which x and t
/// share, but a 0 (when the Reshape's `allowzero` is 0, the default) copies t's dim at that
/// position. So s2′ = s2 with every such 0 resolved:
/// - to s1[i] when the inner node is a Reshape with a constant s1 whose entry i is positive;
/// - left a 0 when s1[i] is itself a 0 copying x's dim i (the inner Reshape's allowzero is 0), so
///   it now copies the same dim from x directly;
/// - to t's dim i when shape inference knows it as a positive number, or left a 0 when t's dim i
///   is the same symbol as x's dim i (a batch dim N that Flatten or Reshape carried through).
/// With `allowzero = 1` on the outer Reshape, a 0 is a literal extent and needs nothing. When a 0
/// cannot be resolved the pair stays.
///
/// Conditions: s2 is a constant (not an overridable graph input) of int64s; the inner node is of
/// the default domain with one output whose only use is the outer Reshape (a second reader or a
/// graph output keeps it alive, and then merging would remove nothing). A Reshape to x's own
/// shape is left for `eliminate-identity`.
public struct MergeReshapes: Pass {
  public static let name = "merge-reshapes"
  public static let summary = "Merge a Reshape, Flatten, Squeeze or Unsqueeze into the constant-shape Reshape after it"
  public static let isExact = true
  public static let isDefault = true

  public init(options: PassOptions) {}

  public func run(_ rewriter: inout Rewriter) throws {
    rewriter.inferShapes()
    rewriter.applyGreedily([ReshapeOfReshape()])
  }
}

/// A shape op feeding a constant-shape Reshape; see ``MergeReshapes``.
struct ReshapeOfReshape: RewritePattern {
  static let name = "reshape-reshape"
  static let rootOpTypes: Set<String>? = [OpType.reshape]

  static let innerOpTypes: Set<String> = [OpType.reshape, OpType.flatten, OpType.squeeze, OpType.unsqueeze]

  struct Match {
    let inner: Node
    let outer: Node
    let source: ValueID
    /// The outer shape with its 0s resolved, when any needed resolving (nil: s2 as it is).
    let resolvedShape: [Int64]?
  }

  func match(_ outer: Node, in graph: Graph) -> Match? {
    guard outer.outputs.count == 1, let t = outer.input(0), graph.hasSingleUse(t),
      let inner = graph.producer(of: t), Self.innerOpTypes.contains(inner.opType),
      OpType.isDefaultDomain(inner.domain), inner.outputs.count == 1, let x = inner.input(0),
      let target = outer.input(1), let s2 = graph.constant(target), s2.dtype == .int64, s2.shape.count == 1,
      let entries = s2.int64s
    else { return nil }
    let outerAllowsZero = graph.int("allowzero", of: outer, default: 0) != 0
    guard !outerAllowsZero, entries.contains(0) else {
      return Match(inner: inner, outer: outer, source: x, resolvedShape: nil)
    }
    var resolved = entries
    for i in entries.indices where entries[i] == 0 {
      guard let extent = resolve(dim: i, of: inner, in: graph) else { return nil }
      resolved[i] = extent
    }
    return Match(inner: inner, outer: outer, source: x, resolvedShape: resolved == entries ? nil : resolved)
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    let inner = rewriter.graph.label(m.inner), outer = rewriter.graph.label(m.outer)
    rewriter.setInput(0, of: m.outer.id, to: m.source)
    guard let shape = m.resolvedShape else { return "\(inner) merged into \(outer)" }
    let base = rewriter.graph[m.outer.input(1)!].name
    let constant = rewriter.addInitializer(base, Tensor(int64s: shape, shape: [shape.count]))
    rewriter.setInput(1, of: m.outer.id, to: constant)
    return "\(inner) merged into \(outer): shape \(shape), its 0s resolved"
  }

  /// What a 0 at position `i` of the outer shape stands for once the outer Reshape reads the
  /// inner node's input: a positive extent, or 0 when it copies the same dim of that input.
  private func resolve(dim i: Int, of inner: Node, in graph: Graph) -> Int64? {
    if inner.opType == OpType.reshape, let s1 = graph.constantInts(inner.input(1)), i < s1.count {
      if s1[i] > 0 { return s1[i] }
      if s1[i] == 0 && graph.int("allowzero", of: inner, default: 0) == 0 { return 0 }
    }
    guard let dims = graph.shape(of: inner.output(0)), i < dims.count else { return nil }
    switch dims[i] {
    case .value(let extent) where extent > 0: return Int64(extent)
    case .param(let symbol):
      // The same symbol at the same position of the input: copying from there is the same.
      guard let x = graph.shape(of: inner.input(0)), i < x.count, x[i] == .param(symbol) else { return nil }
      return 0
    default: return nil
    }
  }
}
