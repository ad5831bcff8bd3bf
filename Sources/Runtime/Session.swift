import Graph
import Linalg

/// Settings of a `Session`.
public struct SessionOptions: Sendable {
  /// Threads for the runtime's own loops and for BLAS (a process-wide BLAS setting, applied at
  /// every run). Tests pin 1.
  public var threadCount: Int
  /// The kernels to run operators with.
  public var registry: KernelRegistry

  public init(threadCount: Int = BLAS.processorCount, registry: KernelRegistry = .standard) {
    self.threadCount = max(1, threadCount)
    self.registry = registry
  }
}

/// Runs a graph on the CPU.
///
///     let session = try Session(model: model, options: SessionOptions(threadCount: 1))
///     let outputs = try session.run(["x": NDArray(pixels, shape: [1, 3, 224, 224])])
///     let y = outputs["y"]!.scalars(as: Float.self)
///
/// Building the session checks every node: an operator without a kernel, or an attribute value a
/// kernel does not support, is a `RuntimeError` naming the node. Running frees each intermediate
/// after its last reader. float16 constants and inputs are computed in float32 and outputs
/// declared float16 are returned as float16.
public final class Session: Sendable {
  let compiled: CompiledGraph
  public let options: SessionOptions

  /// A session over the model's main graph, at the model's default-domain opset.
  public convenience init(model: Model, options: SessionOptions = SessionOptions()) throws(RuntimeError) {
    guard let opset = model.onnxOpsetVersion else { throw .graph("the model imports no default-domain opset") }
    try self.init(graph: model.graph, opset: Int(opset), options: options)
  }

  public init(graph: Graph, opset: Int, options: SessionOptions = SessionOptions()) throws(RuntimeError) {
    self.options = options
    compiled = try CompiledGraph(graph: graph, opset: opset, registry: options.registry)
  }

  /// The graph's inputs, in order (including those with a default initializer).
  public var inputNames: [String] { compiled.inputs.map(\.name) }
  /// Inputs without a default: these must be fed.
  public var requiredInputNames: [String] { compiled.inputs.filter { $0.defaultValue == nil }.map(\.name) }
  public var outputNames: [String] { compiled.outputs.map(\.name) }

  /// Runs the graph and returns every graph output by name.
  public func run(_ feeds: [String: NDArray]) throws(RuntimeError) -> [String: NDArray] {
    let values = try run(feeds, fetching: outputNames)
    return Dictionary(zip(outputNames, values), uniquingKeysWith: { a, _ in a })
  }

  /// Runs what is needed for `names`, which may name any value of the graph (intermediate
  /// activations too, for calibration), and returns them in that order.
  public func run(_ feeds: [String: NDArray], fetching names: [String]) throws(RuntimeError) -> [NDArray] {
    var slots: [Int] = []
    for name in names {
      guard let slot = compiled.slot(named: name) else { throw .graph("the graph has no value named '\(name)'") }
      slots.append(slot)
    }
    BLAS.threadCount = options.threadCount
    let values = try compiled.run(feeds: feeds, outer: [:], fetch: slots, threadCount: options.threadCount)
    let float16Outputs = Set(compiled.outputs.filter(\.isFloat16).map(\.slot))
    return zip(slots, values).map { float16Outputs.contains($0) ? $1.downcastingToFloat16() : $1 }
  }
}
