import Graph
import Runtime

/// Computes ahead of time what depends on constants only.
///
///     a = Mul(w1, w2); y = Add(x, a)            (w1, w2 initializers)
///     → y = Add(x, a)  with a an initializer holding w1·w2
///     c = Constant<value = …>(); y = Add(x, c)
///     → y = Add(x, c)  with c an initializer holding the value
///
/// A node folds when every input it has is a constant (an initializer a caller cannot override;
/// omitted optional inputs are fine) and it has no subgraph: the runtime's own kernel computes its
/// outputs (``KernelRegistry/evaluate(_:in:opset:inputs:outerValues:)``), which become initializers
/// named like the outputs they replace. A `Constant` node becomes an initializer directly from its
/// `value`, `value_float(s)`, `value_int(s)` or `value_string(s)` (never `sparse_value`).
///
/// Conditions:
/// - No output is a graph output. ONNX lets a graph output name only a node output or a graph
///   input; an initializer there would need an `Identity` to carry the name, which would fold again.
/// - The op is deterministic: `RandomNormal`, `RandomUniform`, their `…Like` forms, `Multinomial` and
///   `Bernoulli` never fold; training-mode `Dropout` is refused by its kernel.
/// - Size guard: the folded outputs may be at most `max-growth` times the bytes of the constant
///   inputs (or at most 1 KiB), so a folded `Expand`, `Tile` or `ConstantOfShape` never bloats the
///   model. When the output shape is inferred the guard runs before evaluating; a generator whose
///   output shape is not inferred does not fold.
/// - The result's element type is the declared (or inferred) one: the runtime carries float16 as
///   float32, so a float32 result for a float16 output is rounded back to float16 (exact: the
///   kernel already rounded through half precision); any other mismatch, or a shape that disagrees
///   with the inferred one, declines.
/// - An op the runtime has no kernel for, or whose kernel throws, is left alone silently.
public struct FoldConstants: Pass {
  public static let name = "fold-constants"
  public static let summary = "Compute nodes whose inputs are all constant, and turn Constant nodes into initializers"
  public static let isExact = true
  public static let isDefault = true
  public static let options = [
    PassOption("max-growth", .float, default: "2.0",
      "Largest ratio of a folded result's bytes to its constant inputs' bytes (results up to 1 KiB always fold)")
  ]

  let maxGrowth: Double

  public init(options: PassOptions) throws(PassOptionError) {
    maxGrowth = options.float("max-growth")
    guard maxGrowth >= 0 else { throw PassOptionError("option fold-constants.max-growth must not be negative") }
  }

  public func run(_ rewriter: inout Rewriter) throws {
    rewriter.inferShapes()
    let evaluator = ConstantEvaluator(opset: rewriter.opset, maxGrowth: maxGrowth)
    rewriter.applyGreedily([FoldConstantNode(evaluator: evaluator)])
  }
}

/// A node whose inputs are all constant, replaced by its computed outputs; see ``FoldConstants``.
struct FoldConstantNode: RewritePattern {
  static let name = "constant-node"
  static let rootOpTypes: Set<String>? = nil

  let evaluator: ConstantEvaluator

  func match(_ node: Node, in graph: Graph) -> FoldedNode? {
    evaluator.fold(node, in: graph)
  }

  func rewrite(_ folded: FoldedNode, _ rewriter: inout Rewriter) throws -> String {
    let description = folded.description(in: rewriter.graph)
    rewriter.replaceWithConstants(folded)
    return description
  }
}

/// A node computed ahead of time: the values of its used outputs.
struct FoldedNode {
  let node: Node
  let outputs: [(value: ValueID, tensor: Tensor)]

  /// "Add →y folded to a constant float[64]".
  func description(in graph: Graph) -> String {
    let types = outputs.map { "\($0.tensor.dtype)[\($0.tensor.shape.map(String.init).joined(separator: ","))]" }
    if node.opType == OpType.constant { return "\(graph.label(node)) became an initializer \(types.joined())" }
    return "\(graph.label(node)) folded to \(types.count == 1 ? "a constant" : "constants") \(types.joined(separator: ", "))"
  }
}

/// Computes nodes whose inputs are all constant with the runtime's kernels, within a size guard.
struct ConstantEvaluator: Sendable {
  let opset: Int
  /// Largest ratio of output bytes to input bytes (above ``floorBytes``).
  let maxGrowth: Double
  /// Results up to this many bytes always fold.
  var floorBytes = 1024
  /// Only small tensors in and out (fold-shape-chains' shape arithmetic).
  var smallOnly = false

  /// Ops whose results are random: never folded.
  static let nondeterministic: Set<String> = [
    "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli",
  ]
  /// Ops whose output can be much larger than their inputs: folded only when the inferred output
  /// shape lets the size guard run before the kernel allocates.
  static let generators: Set<String> = [
    OpType.constantOfShape, OpType.expand, OpType.tile, OpType.range, OpType.resize, OpType.upsample, OpType.pad,
    OpType.oneHot, "EyeLike",
  ]
  /// The largest tensor (in elements) that counts as shape arithmetic.
  static let shapeArithmeticElements = 64

  /// The used outputs of `node` as constants, or nil when it should not or cannot fold.
  func fold(_ node: Node, in graph: Graph) -> FoldedNode? {
    guard !Self.nondeterministic.contains(node.opType), node.captures.isEmpty,
      !node.attributes.contains(where: { !$0.subgraphs.isEmpty }),
      node.outputs.contains(where: { $0 != nil && !graph[$0!].uses.isEmpty }),
      !node.outputs.contains(where: { $0 != nil && graph.isGraphOutput($0!) })
    else { return nil }
    if node.opType == OpType.constant {
      guard let output = node.output(0), let tensor = Self.constantValue(of: node),
        !smallOnly || Self.isShapeArithmetic(tensor)
      else { return nil }
      return FoldedNode(node: node, outputs: [(output, tensor)])
    }
    var inputs: [Tensor?] = []
    for input in node.inputs {
      guard let input else {
        inputs.append(nil)
        continue
      }
      guard let tensor = graph.constant(input), !smallOnly || Self.isShapeArithmetic(tensor) else { return nil }
      inputs.append(tensor)
    }
    guard inputs.contains(where: { $0 != nil }) else { return nil }
    let inputBytes = inputs.reduce(0) { $0 + ($1?.byteCount ?? 0) }
    guard fitsBeforehand(node, inputBytes: inputBytes, in: graph),
      let results = evaluate(node, inputs, in: graph), results.count >= node.outputs.count
    else { return nil }
    var outputs: [(value: ValueID, tensor: Tensor)] = []
    for (i, output) in node.outputs.enumerated() {
      guard let output, !graph[output].uses.isEmpty else { continue }
      guard let tensor = Self.tensor(results[i], for: output, in: graph, inputs: inputs, node: node),
        !smallOnly || Self.isShapeArithmetic(tensor)
      else { return nil }
      outputs.append((output, tensor))
    }
    guard fits(outputBytes: outputs.reduce(0) { $0 + $1.tensor.byteCount }, inputBytes: inputBytes) else { return nil }
    return FoldedNode(node: node, outputs: outputs)
  }

  private func fits(outputBytes: Int, inputBytes: Int) -> Bool {
    outputBytes <= floorBytes || Double(outputBytes) <= maxGrowth * Double(inputBytes)
  }

  /// The size guard on the inferred output shapes, before any kernel runs.
  private func fitsBeforehand(_ node: Node, inputBytes: Int, in graph: Graph) -> Bool {
    var bytes = 0
    for output in node.outputs.compactMap({ $0 }) {
      guard let type = graph[output].type, let shape = type.staticShape, let dtype = type.tensorElementType,
        let count = checkedElementCount(shape), let b = dtype.byteCount(elements: count)
      else {
        if Self.generators.contains(node.opType) { return false }
        continue
      }
      bytes += b
    }
    return fits(outputBytes: bytes, inputBytes: inputBytes)
  }

  /// Runs the node's kernel; nil when there is none or it throws.
  private func evaluate(_ node: Node, _ inputs: [Tensor?], in graph: Graph) -> [NDArray]? {
    var arrays: [NDArray?] = []
    for input in inputs {
      guard let input else {
        arrays.append(nil)
        continue
      }
      // The runtime holds float16 as float32 (see `NDArray.upcastingFloat16()`).
      guard let array = try? NDArray(input).upcastingFloat16() else { return nil }
      arrays.append(array)
    }
    return try? KernelRegistry.standard.evaluate(node.id, in: graph, opset: opset, inputs: arrays)
  }

  /// `result` as a constant of the type `output` has, or nil when they disagree.
  private static func tensor(_ result: NDArray, for output: ValueID, in graph: Graph, inputs: [Tensor?], node: Node)
    -> Tensor?
  {
    var result = result
    let declared = graph[output].type
    if let shape = declared?.staticShape, shape != result.shape { return nil }
    if let expected = declared?.tensorElementType {
      if expected == .float16 && result.dtype == .float { result = result.downcastingToFloat16() }
      guard result.dtype == expected else { return nil }
    } else if result.dtype == .float && mentionsFloat16(node, inputs) {
      return nil  // float32 may stand for float16 here, and nothing says which
    }
    return result.toTensor()
  }

  /// Whether float16 appears among the node's inputs or attributes (where a float32 result is ambiguous).
  private static func mentionsFloat16(_ node: Node, _ inputs: [Tensor?]) -> Bool {
    inputs.contains { $0?.dtype == .float16 }
      || node.attributes.contains { $0.int == Int64(DType.float16.rawValue) || $0.tensor?.dtype == .float16 }
  }

  /// Whether `tensor` is small enough to be shape arithmetic (or a scale computed from a shape).
  static func isShapeArithmetic(_ tensor: Tensor) -> Bool {
    tensor.dtype != .string && tensor.elementCount <= shapeArithmeticElements
  }

  /// The value a `Constant` node holds, from whichever one value attribute it has.
  static func constantValue(of node: Node) -> Tensor? {
    guard node.attributes.count == 1, let attribute = node.attributes.first else { return nil }
    switch (attribute.name, attribute.value) {
    case ("value", .tensor(let t)): return t
    case ("value_float", .float(let v)): return Tensor(floats: [v], shape: [])
    case ("value_floats", .floats(let v)): return Tensor(floats: v, shape: [v.count])
    case ("value_int", .int(let v)): return Tensor(int64s: [v], shape: [])
    case ("value_ints", .ints(let v)): return Tensor(int64s: v, shape: [v.count])
    case ("value_string", .string(let s)): return Tensor(strings: [s], shape: [])
    case ("value_strings", .strings(let s)): return Tensor(strings: s, shape: [s.count])
    default: return nil  // sparse_value, a reference to a function attribute, or a malformed node
    }
  }
}

extension Rewriter {
  /// Replaces each folded output by an initializer of the same name holding its value, and erases
  /// the node.
  mutating func replaceWithConstants(_ folded: FoldedNode) {
    var made: [(ValueID, String)] = []
    for (value, tensor) in folded.outputs {
      let name = graph[value].name
      let constant = addInitializer(name, tensor)
      replaceAllUses(of: value, with: constant)
      made.append((constant, name))
    }
    erase(folded.node.id)
    for (constant, name) in made { rename(constant, to: name) }
  }
}
