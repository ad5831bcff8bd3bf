import Graph

/// The computation of one operator, built once per node and run any number of times.
///
/// `init` reads the node's attributes (through the builder, which supplies ONNX's defaults and
/// names the node in every error) and may precompute from constant inputs; it throws for any
/// attribute value it does not support. An attribute the kernel never reads is an error too, so
/// an unknown attribute cannot be silently ignored: read those that have no effect with
/// `builder.ignore(_:)`. `run` computes the outputs, one per output slot of the node (outputs the
/// node omits may still be computed; they are dropped).
///
/// To add an operator: write a kernel type in a file of its family under `Kernels/`, then add one
/// line to `standardKernels` in `KernelRegistry.swift`. An element-wise float function is a map:
///
///     /// Neg: −x.
///     struct NegMap: UnaryFloatMap {
///       init(_ builder: KernelBuilder) throws {}
///       func apply(_ x: Float) -> Float { -x }
///     }
///     // KernelRegistry.swift:  ("Neg", UnaryFloat<NegMap>.self),
///
/// and any other operator a small struct:
///
///     /// Size: the element count of the input, as an int64 scalar.
///     struct Size: Kernel {
///       init(_ builder: KernelBuilder) throws {}
///       func run(_ context: KernelContext) throws -> [NDArray] {
///         let x = try context.input(0)                     // "node 'n' (Size): input 0 is required"
///         return [NDArray(scalar: Int64(x.count))]
///       }
///     }
///
/// Conventions: check dtypes with `context.input(i, .float, …)` and shapes before touching memory,
/// and throw `context.error(…)` (never trap) for anything the node's inputs get wrong; allocate
/// outputs with `NDArray(uninitialized:shape:)` and write them through
/// `withUnsafeMutableBufferPointer(of:)`; split large loops with `Parallel.forEach` (chunks, not
/// elements) and matrix products go to `BLAS.sgemm`. float16 never reaches a kernel: the
/// runtime computes in float32 (see `NDArray.upcastingFloat16()`).
///
/// Performance: hot loops must run specialized. A kernel generic over an operation type
/// (`BinaryArithmetic<Op>`, `UnaryFloat<Map>`) is registered through its metatype, so its `run`
/// executes unspecialized; reach the loops through a protocol requirement of `Op` whose default
/// implementation holds them (each concrete conformance gets a specialized copy), as
/// `ArithmeticOperation.evaluate` and `UnaryFloatMap.apply(_:_:count:)` do, or from a concrete kernel.
public protocol Kernel: Sendable {
  init(_ builder: KernelBuilder) throws
  func run(_ context: KernelContext) throws -> [NDArray]
}

/// What a kernel sees while it is built: the node, the opset, attribute readers with defaults, and
/// the constant inputs.
public final class KernelBuilder {
  public let node: Node
  /// The version of the default ONNX operator set the model imports.
  public let opset: Int
  public let label: NodeLabel
  let graph: Graph
  let compileSubgraph: (Graph) throws(RuntimeError) -> CompiledGraph
  private(set) var readAttributes: Set<String> = []

  init(
    node: Node, opset: Int, graph: Graph,
    compileSubgraph: @escaping (Graph) throws(RuntimeError) -> CompiledGraph
  ) {
    self.node = node
    self.opset = opset
    self.graph = graph
    self.label = NodeLabel(node, in: graph)
    self.compileSubgraph = compileSubgraph
  }

  // MARK: Inputs and outputs

  /// Input slots the node has (omitted optional ones included).
  public var inputCount: Int { node.inputs.count }
  public var outputCount: Int { node.outputs.count }
  public func hasInput(_ i: Int) -> Bool { node.input(i) != nil }
  public func hasOutput(_ i: Int) -> Bool { node.output(i) != nil }

  /// Input `i` when it is a constant initializer (which a caller cannot override), as the runtime
  /// holds it; nil otherwise.
  public func constantInput(_ i: Int) throws(RuntimeError) -> NDArray? {
    guard let tensor = graph.constant(node.input(i)) else { return nil }
    return try NDArray.runtimeConstant(tensor)
  }

  // MARK: Errors

  /// An error about the node's inputs or semantics.
  public func error(_ message: String) -> RuntimeError { label.error(message) }

  /// An error about attribute `name`.
  public func attributeError(_ name: String, _ message: String) -> RuntimeError {
    label.attributeError(name, message)
  }

  /// The error for an attribute value the kernel does not support.
  public func unsupported(_ name: String, _ value: Any) -> RuntimeError {
    label.attributeError(name, "unsupported value \(value)")
  }

  // MARK: Attributes

  private func attribute(_ name: String) -> Attribute? {
    readAttributes.insert(name)
    return node.attribute(name)
  }

  private func typeError(_ a: Attribute, _ expected: String) -> RuntimeError {
    if case .reference = a.value {
      return attributeError(
        a.name, "refers to a function attribute ('\(a.refAttrName ?? "")'); inline the function first")
    }
    return attributeError(a.name, "expected \(expected), found \(Self.kindName(a.value))")
  }

  /// Marks attributes as known to have no effect on inference (`Dropout`'s `seed`), so that their
  /// presence is not an error.
  public func ignore(_ names: String...) { for n in names { readAttributes.insert(n) } }

  /// Whether the node carries attribute `name` (marks it read).
  public func has(_ name: String) -> Bool { attribute(name) != nil }

  public func optionalInt(_ name: String) throws(RuntimeError) -> Int? {
    guard let a = attribute(name) else { return nil }
    guard case .int(let v) = a.value else { throw typeError(a, "an int") }
    return Int(v)
  }

  public func int(_ name: String, default value: Int) throws(RuntimeError) -> Int {
    try optionalInt(name) ?? value
  }

  /// A required int attribute.
  public func int(_ name: String) throws(RuntimeError) -> Int {
    guard let v = try optionalInt(name) else { throw attributeError(name, "is required") }
    return v
  }

  public func optionalInts(_ name: String) throws(RuntimeError) -> [Int]? {
    guard let a = attribute(name) else { return nil }
    guard case .ints(let v) = a.value else { throw typeError(a, "a list of ints") }
    return v.map { Int($0) }
  }

  public func ints(_ name: String, default value: [Int]) throws(RuntimeError) -> [Int] {
    try optionalInts(name) ?? value
  }

  public func optionalFloat(_ name: String) throws(RuntimeError) -> Float? {
    guard let a = attribute(name) else { return nil }
    guard case .float(let v) = a.value else { throw typeError(a, "a float") }
    return v
  }

  public func float(_ name: String, default value: Float) throws(RuntimeError) -> Float {
    try optionalFloat(name) ?? value
  }

  public func optionalFloats(_ name: String) throws(RuntimeError) -> [Float]? {
    guard let a = attribute(name) else { return nil }
    guard case .floats(let v) = a.value else { throw typeError(a, "a list of floats") }
    return v
  }

  public func optionalString(_ name: String) throws(RuntimeError) -> String? {
    guard let a = attribute(name) else { return nil }
    guard case .string(let v) = a.value else { throw typeError(a, "a string") }
    return String(decoding: v, as: UTF8.self)
  }

  public func string(_ name: String, default value: String) throws(RuntimeError) -> String {
    try optionalString(name) ?? value
  }

  public func optionalTensor(_ name: String) throws(RuntimeError) -> Tensor? {
    guard let a = attribute(name) else { return nil }
    guard case .tensor(let v) = a.value else { throw typeError(a, "a tensor") }
    return v
  }

  /// A subgraph attribute (If's branches, Loop's body), compiled with the same registry and opset.
  public func subgraph(_ name: String) throws(RuntimeError) -> Subgraph {
    guard let a = attribute(name) else { throw attributeError(name, "is required") }
    guard case .graph(let g) = a.value else { throw typeError(a, "a graph") }
    return Subgraph(compiled: try compileSubgraph(g))
  }

  /// Attributes the node carries that the kernel did not read.
  var unreadAttributes: [String] {
    node.attributes.map(\.name).filter { !readAttributes.contains($0) }
  }

  private static func kindName(_ v: Attribute.Value) -> String {
    switch v {
    case .float: return "a float"
    case .int: return "an int"
    case .string: return "a string"
    case .tensor: return "a tensor"
    case .graph: return "a graph"
    case .sparseTensor: return "a sparse tensor"
    case .type: return "a type"
    case .floats: return "a list of floats"
    case .ints: return "a list of ints"
    case .strings: return "a list of strings"
    case .tensors: return "a list of tensors"
    case .graphs: return "a list of graphs"
    case .sparseTensors: return "a list of sparse tensors"
    case .types: return "a list of types"
    case .reference: return "a function attribute reference"
    }
  }
}

/// What a kernel sees while it runs: its inputs, the thread budget and, for nodes with
/// subgraphs, the values those subgraphs read from the enclosing graphs.
public struct KernelContext: Sendable {
  public let label: NodeLabel
  /// Inputs by slot; nil for omitted optional inputs.
  public let inputs: [NDArray?]
  /// Threads the kernel may use for its own loops (BLAS has been set to the same count).
  public let threadCount: Int
  /// Values of enclosing graphs the node's subgraphs read, by name.
  public let outerValues: [String: NDArray]

  public init(label: NodeLabel, inputs: [NDArray?], threadCount: Int = 1, outerValues: [String: NDArray] = [:]) {
    self.label = label
    self.inputs = inputs
    self.threadCount = threadCount
    self.outerValues = outerValues
  }

  /// Required input `i`.
  public func input(_ i: Int) throws(RuntimeError) -> NDArray {
    guard i < inputs.count, let x = inputs[i] else { throw error("input \(i) is required") }
    return x
  }

  /// Optional input `i`, nil when omitted.
  public func optionalInput(_ i: Int) -> NDArray? { i < inputs.count ? inputs[i] : nil }

  /// Required input `i`, which must be of one of `dtypes`.
  public func input(_ i: Int, _ dtypes: DType...) throws(RuntimeError) -> NDArray {
    let x = try input(i)
    guard dtypes.contains(x.dtype) else { throw unsupportedType(x.dtype, input: i) }
    return x
  }

  public func error(_ message: String) -> RuntimeError { label.error(message) }

  /// The error for an input whose element type the kernel does not implement.
  public func unsupportedType(_ dtype: DType, input i: Int) -> RuntimeError {
    label.error("input \(i) of type \(dtype) is not supported")
  }
}

/// A compiled subgraph attribute; `run` binds the subgraph's inputs by position and its outer
/// references from `context.outerValues`.
public struct Subgraph: Sendable {
  let compiled: CompiledGraph

  public var inputNames: [String] { compiled.inputs.map(\.name) }
  public var outputNames: [String] { compiled.outputs.map(\.name) }

  public func run(_ inputs: [NDArray], context: KernelContext) throws(RuntimeError) -> [NDArray] {
    guard inputs.count == compiled.inputs.count else {
      throw context.error("subgraph takes \(compiled.inputs.count) inputs, given \(inputs.count)")
    }
    var feeds: [String: NDArray] = [:]
    for (i, input) in compiled.inputs.enumerated() { feeds[input.name] = inputs[i] }
    return try compiled.run(
      feeds: feeds, outer: context.outerValues, fetch: compiled.outputs.map(\.slot), threadCount: context.threadCount)
  }
}
