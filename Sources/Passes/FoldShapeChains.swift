import Graph

/// Folds the Shape → Gather/Slice → Unsqueeze → Concat → Reshape chains PyTorch exporters emit.
///
///     s = Shape(x)                       (x: float[1,3,8,8])
///     → s = int64[4] {1, 3, 8, 8}        (an initializer)
///
///     s = Shape(x); n = Gather<axis=0>(s, 0); c = Gather<axis=0>(s, 1)     (x: float[N,3,8,8])
///     u = Unsqueeze(n, [0]); v = Unsqueeze(c, [0]); t = Concat<axis=0>(u, v, [-1]); y = Reshape(x, t)
///     → y = Reshape(x, {0, 3, -1})
///
/// Shape inference runs first; then, to a fixed point:
/// - `Shape(x)` (its `start`/`end` respected) and `Size(x)` of a statically shaped x become
///   int64 constants; so do `Gather(Shape(x), k)` and `Slice(Shape(x), …)` that pick only static
///   dims when other dims of x are symbolic.
/// - Shape arithmetic on constants (nodes whose constant inputs and outputs have at most 64
///   elements each: Unsqueeze, Concat, Gather, Cast, Mul, Floor…, and small `Constant` nodes) is
///   computed by the runtime's kernels as in ``FoldConstants``, so the pass is complete on its own
///   (`--passes fold-shape-chains`) and finishes the float scale arithmetic of Resize chains that
///   fold-constants, running before it, could not yet see.
/// - `Reshape(x, Concat(p₀, …, pₖ))` whose pieces are constant except for pieces that are one dim
///   of a tensor (`Unsqueeze(Gather(Shape(v), k))`, `Gather(Shape(v), [k])` or
///   `Slice(Shape(v), k, k+1)`) gets a constant shape:
///   - a piece that is dim j of x itself at position j becomes 0, "copy dim j of the input", when
///     `allowzero` is 0: the same extent at run time, whatever it is;
///   - otherwise a single such piece becomes −1 when every other entry is a positive constant:
///     Reshape then infers it as size(x) / ∏ others, which is the dim the piece held (the
///     original Reshape was valid, so size(x) = d · ∏ others, and d ≥ 0 as it is an extent).
///   Anything else (two unresolved pieces, a piece of unknown origin, a constant −1 or 0 alongside
///   a −1) declines. The Shape/Gather/Concat chain is then dead and the cleanup removes it.
///
/// A node whose output is a graph output is never folded (see ``FoldConstants``).
public struct FoldShapeChains: Pass {
  public static let name = "fold-shape-chains"
  public static let summary = "Fold Shape/Gather/Unsqueeze/Concat chains into constants, and Reshape shapes with symbolic dims into 0/-1"
  public static let isExact = true
  public static let isDefault = true

  public init(options: PassOptions) {}

  public func run(_ rewriter: inout Rewriter) throws {
    rewriter.inferShapes()
    var arithmetic = ConstantEvaluator(opset: rewriter.opset, maxGrowth: 1)
    arithmetic.smallOnly = true
    rewriter.applyGreedily([StaticShapeValue(), FoldConstantNode(evaluator: arithmetic), ReshapeDimsFromShape()])
  }
}

/// `Shape`, `Size`, or a `Gather`/`Slice` of a `Shape`, whose value the inferred shape fixes.
struct StaticShapeValue: RewritePattern {
  static let name = "static-shape"
  static let rootOpTypes: Set<String>? = [OpType.shape, OpType.size, OpType.gather, OpType.slice]

  func match(_ node: Node, in graph: Graph) -> FoldedNode? {
    guard node.outputs.count == 1, let output = node.output(0), !graph[output].uses.isEmpty,
      !graph.isGraphOutput(output), let (values, shape) = staticValue(of: node, in: graph)
    else { return nil }
    return FoldedNode(node: node, outputs: [(output, Tensor(int64s: values, shape: shape))])
  }

  func rewrite(_ folded: FoldedNode, _ rewriter: inout Rewriter) throws -> String {
    let values = folded.outputs[0].tensor.int64s ?? []
    let description = "\(rewriter.graph.label(folded.node)) folded to the constant [\(values.map(String.init).joined(separator: ", "))]"
    rewriter.replaceWithConstants(folded)
    return description
  }

  /// The node's value and its shape, when every dim it reads is static.
  private func staticValue(of node: Node, in graph: Graph) -> ([Int64], [Int])? {
    switch node.opType {
    case OpType.shape:
      guard let dims = graph.shapeDims(of: node) else { return nil }
      let values = dims.compactMap { $0.value.map(Int64.init) }
      return values.count == dims.count ? (values, [values.count]) : nil
    case OpType.size:
      guard let x = node.input(0), let shape = graph[x].type?.staticShape, let count = checkedElementCount(shape) else { return nil }
      return ([Int64(count)], [])
    case OpType.gather:
      guard let dims = graph.producer(of: node.input(0)).flatMap({ graph.shapeDims(of: $0) }),
        [0, -1].contains(node.attribute("axis")?.int ?? 0),
        let indices = graph.constant(node.input(1)), let ks = indices.int64s
      else { return nil }
      var values: [Int64] = []
      for k in ks {
        guard let i = normalized(k, count: dims.count), let v = dims[i].value else { return nil }
        values.append(Int64(v))
      }
      return (values, indices.shape)
    case OpType.slice:
      guard let dims = graph.producer(of: node.input(0)).flatMap({ graph.shapeDims(of: $0) }),
        let picked = graph.slicedIndices(node, count: dims.count)
      else { return nil }
      let values = picked.compactMap { dims[$0].value.map(Int64.init) }
      return values.count == picked.count ? (values, [values.count]) : nil
    default:
      return nil
    }
  }
}


/// `Reshape(x, Concat(…))` whose non-constant pieces are dims of tensors, given a constant shape
/// with 0 (copy) or −1 (infer) in their place; see ``FoldShapeChains``.
struct ReshapeDimsFromShape: RewritePattern {
  static let name = "reshape-symbolic-dims"
  static let rootOpTypes: Set<String>? = [OpType.reshape]

  struct Match {
    let reshape: Node
    let concat: Node
    let shape: [Int64]
  }

  func match(_ reshape: Node, in graph: Graph) -> Match? {
    guard reshape.inputs.count == 2, let data = reshape.input(0), let target = reshape.input(1),
      graph.constant(target) == nil, let concat = graph.producer(of: target), concat.opType == OpType.concat,
      let axis = concat.attribute("axis")?.int, axis == 0 || axis == -1
    else { return nil }
    let allowZero = graph.int("allowzero", of: reshape, default: 0) != 0
    var entries: [Int64?] = []
    var unresolved: [Int] = []
    var copies = 0
    for piece in concat.inputs {
      guard let piece else { return nil }
      if let t = graph.constant(piece) {
        guard t.dtype == .int64, t.shape.count == 1, let ints = t.int64s else { return nil }
        entries += ints
        continue
      }
      guard let (source, k) = graph.dimSource(piece) else { return nil }
      if !allowZero && source == data && k == entries.count {
        entries.append(0)
        copies += 1
      } else {
        unresolved.append(entries.count)
        entries.append(nil)
      }
    }
    if unresolved.count == 1 {
      // −1 is only exact when every other entry is a known positive extent.
      guard copies == 0, entries.allSatisfy({ $0 == nil || $0! > 0 }) else { return nil }
      entries[unresolved[0]] = -1
    }
    guard unresolved.count <= 1 else { return nil }
    return Match(reshape: reshape, concat: concat, shape: entries.map { $0 ?? -1 })
  }

  func rewrite(_ m: Match, _ rewriter: inout Rewriter) throws -> String {
    guard let target = m.reshape.input(1) else { throw ShapeChainError() }
    let shape = rewriter.addInitializer(rewriter.graph[target].name, Tensor(int64s: m.shape, shape: [m.shape.count]))
    rewriter.setInput(1, of: m.reshape.id, to: shape)
    let values = m.shape.map(String.init).joined(separator: ", ")
    return "\(rewriter.graph.label(m.reshape)): shape from \(rewriter.graph.label(m.concat)) replaced by the constant [\(values)]"
  }
}

struct ShapeChainError: Error {}

/// `k` as an index into `count` elements (negative from the end), if in range.
private func normalized(_ k: Int64, count: Int) -> Int? {
  let i = k < 0 ? Int(k) + count : Int(k)
  return i >= 0 && i < count ? i : nil
}

extension Graph {
  /// The dims a `Shape` node outputs (its input's recorded shape, cut by `start` and `end`).
  func shapeDims(of shape: Node) -> [Dim]? {
    guard shape.opType == OpType.shape, let dims = self.shape(of: shape.input(0)) else { return nil }
    let (start, end) = shapeRange(of: shape, rank: dims.count)
    return start < end ? Array(dims[start..<end]) : []
  }

  /// `Shape`'s `start` and `end`, normalized and clamped to `rank`.
  private func shapeRange(of shape: Node, rank: Int) -> (Int, Int) {
    func clamp(_ v: Int64) -> Int { Swift.min(Swift.max(v < 0 ? Int(v) + rank : Int(v), 0), rank) }
    return (clamp(shape.attribute("start")?.int ?? 0), clamp(shape.attribute("end")?.int ?? Int64(rank)))
  }

  /// The indices a one-axis `Slice` (opset 10+) with constant starts, ends, axes and steps picks
  /// from `count` elements.
  func slicedIndices(_ slice: Node, count: Int) -> [Int]? {
    guard slice.inputs.count >= 3, let starts = constantInts(slice.input(1)), let ends = constantInts(slice.input(2)),
      starts.count == 1, ends.count == 1
    else { return nil }
    if let axesValue = slice.input(3) {
      guard let axes = constantInts(axesValue), axes == [0] || axes == [-1] else { return nil }
    }
    var step: Int64 = 1
    if let stepsValue = slice.input(4) {
      guard let steps = constantInts(stepsValue), steps.count == 1, steps[0] != 0 else { return nil }
      step = steps[0]
    }
    let n = Int64(count)
    func resolve(_ v: Int64) -> Int64 { v < 0 ? v &+ n : v }
    var start = resolve(starts[0]), end = resolve(ends[0])
    if step > 0 {
      start = Swift.min(Swift.max(start, 0), n)
      end = Swift.min(Swift.max(end, 0), n)
    } else {
      start = Swift.min(Swift.max(start, 0), n - 1)
      end = Swift.min(Swift.max(end, -1), n - 1)
    }
    return Swift.stride(from: start, to: end, by: Int(step)).map { Int($0) }
  }

  /// The tensor and axis a one-element int64 `value` is an extent of, when it is
  /// `Unsqueeze(Gather(Shape(v), k))`, `Gather(Shape(v), [k])` or `Slice(Shape(v), k, k+1)`.
  func dimSource(_ value: ValueID) -> (value: ValueID, axis: Int)? {
    guard let node = producer(of: value) else { return nil }
    switch node.opType {
    case OpType.unsqueeze:
      let axes = node.attribute("axes")?.ints ?? constantInts(node.input(1))
      guard axes == [0] || axes == [-1], let gather = producer(of: node.input(0)), gather.opType == OpType.gather,
        let indices = constant(gather.input(1)), indices.shape.isEmpty
      else { return nil }
      return dimOfGather(gather, indices)
    case OpType.gather:
      guard let indices = constant(node.input(1)), indices.shape == [1] else { return nil }
      return dimOfGather(node, indices)
    case OpType.slice:
      guard let shapeNode = producer(of: node.input(0)), shapeNode.opType == OpType.shape,
        let rank = shape(of: shapeNode.input(0))?.count, let input = shapeNode.input(0)
      else { return nil }
      let (start, end) = shapeRange(of: shapeNode, rank: rank)
      guard let picked = slicedIndices(node, count: Swift.max(end - start, 0)), picked.count == 1 else { return nil }
      return (input, start + picked[0])
    default:
      return nil
    }
  }

  /// The dim `Gather<axis = 0>(Shape(v), k)` reads, with `indices` holding k.
  private func dimOfGather(_ gather: Node, _ indices: Tensor) -> (value: ValueID, axis: Int)? {
    guard [0, -1].contains(gather.attribute("axis")?.int ?? 0),
      let k = indices.int64s?.first, let shapeNode = producer(of: gather.input(0)), shapeNode.opType == OpType.shape,
      let input = shapeNode.input(0)
    else { return nil }
    if let rank = shape(of: input)?.count {
      let (start, end) = shapeRange(of: shapeNode, rank: rank)
      guard let i = normalized(k, count: Swift.max(end - start, 0)) else { return nil }
      return (input, start + i)
    }
    // Unranked input: only a non-negative index from a non-negative start can be placed (the
    // original model ran, so the index was in range).
    let start = shapeNode.attribute("start")?.int ?? 0
    guard k >= 0, start >= 0 else { return nil }
    return (input, Int(start + k))
  }
}
