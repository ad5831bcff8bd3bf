import Graph

/// The kernels a session may use, by operator domain and type.
public struct KernelRegistry: Sendable {
  private var kernels: [String: any Kernel.Type] = [:]

  public init() {}

  /// Uses `kernel` for `opType` of `domain` ("" is the default ONNX domain), replacing any other.
  public mutating func register(_ kernel: any Kernel.Type, for opType: String, domain: String = "") {
    kernels[Self.key(opType, domain)] = kernel
  }

  public func kernel(for opType: String, domain: String = "") -> (any Kernel.Type)? {
    kernels[Self.key(opType, domain)]
  }

  /// `domain.opType` keys, sorted ("Conv" for the default domain).
  public var operators: [String] { kernels.keys.sorted() }

  private static func key(_ opType: String, _ domain: String) -> String {
    domain.isEmpty || domain == "ai.onnx" ? opType : "\(domain).\(opType)"
  }

  /// The kernel for `node`, built from its attributes (at `opset`), and the node's label. Throws
  /// for an operator without a kernel, an attribute value the kernel does not support, and an
  /// attribute the kernel does not know.
  func makeKernel(for node: Node, in graph: Graph, opset: Int) throws(RuntimeError) -> (any Kernel, NodeLabel) {
    let builder = KernelBuilder(node: node, opset: opset, graph: graph) { (g: Graph) throws(RuntimeError) in
      try CompiledGraph(graph: g, opset: opset, registry: self)
    }
    guard let kernelType = kernel(for: node.opType, domain: node.domain) else {
      throw RuntimeError(kind: .unsupportedOperator, node: builder.label, message: "no kernel")
    }
    let kernel: any Kernel
    do {
      kernel = try kernelType.init(builder)
    } catch let e as RuntimeError {
      throw e
    } catch {
      throw builder.error("\(error)")
    }
    if let unread = builder.unreadAttributes.first {
      throw builder.attributeError(unread, "is not supported")
    }
    return (kernel, builder.label)
  }

  /// Runs one node of `graph` on `inputs` (by input slot; nil for omitted ones), on one thread:
  /// constant folding, or checking a single rewritten layer. `outerValues` are the values its
  /// subgraphs read from enclosing graphs.
  public func evaluate(
    _ node: NodeID, in graph: Graph, opset: Int, inputs: [NDArray?], outerValues: [String: NDArray] = [:]
  ) throws(RuntimeError) -> [NDArray] {
    let (kernel, label) = try makeKernel(for: graph[node], in: graph, opset: opset)
    do {
      return try kernel.run(KernelContext(label: label, inputs: inputs, threadCount: 1, outerValues: outerValues))
    } catch let e as RuntimeError {
      throw e
    } catch {
      throw label.error("\(error)")
    }
  }

  /// Every kernel of the runtime.
  public static let standard: KernelRegistry = {
    var registry = KernelRegistry()
    for (op, kernel) in standardKernels { registry.register(kernel, for: op) }
    for (op, kernel) in fusedLayerKernels { registry.register(kernel, for: op, domain: FusedActivation.domain) }
    for (op, kernel) in contribKernels { registry.register(kernel, for: op, domain: OpType.Contrib.domain) }
    return registry
  }()
}

/// The default-domain operators the runtime implements: one line each, alphabetical.
private let standardKernels: [(String, any Kernel.Type)] = [
  ("Abs", SignedUnary<AbsOperation>.self),
  ("Add", BinaryArithmetic<AddOperation>.self),
  ("And", LogicalKernel<AndOperation>.self),
  ("ArgMax", ArgReduceKernel<ArgMaxReduction>.self),
  ("ArgMin", ArgReduceKernel<ArgMinReduction>.self),
  ("AveragePool", AveragePool.self),
  ("BatchNormalization", BatchNormalization.self),
  ("Cast", Cast.self),
  ("CastLike", CastLike.self),
  ("Clip", Clip.self),
  ("Concat", Concat.self),
  ("Constant", Constant.self),
  ("ConstantOfShape", ConstantOfShape.self),
  ("Conv", Conv.self),
  ("ConvTranspose", ConvTranspose.self),
  ("DepthToSpace", DepthToSpace.self),
  ("Div", BinaryArithmetic<DivOperation>.self),
  ("Dropout", Dropout.self),
  ("Equal", ComparisonKernel<EqualOperation>.self),
  ("Erf", UnaryFloat<ErfMap>.self),
  ("Exp", UnaryFloat<ExpMap>.self),
  ("Expand", Expand.self),
  ("Flatten", Flatten.self),
  ("Gather", Gather.self),
  ("GatherElements", GatherElements.self),
  ("Gelu", UnaryFloat<GeluMap>.self),
  ("Gemm", Gemm.self),
  ("GlobalAveragePool", GlobalPool<AverageReduction>.self),
  ("GlobalMaxPool", GlobalPool<MaxReduction>.self),
  ("Greater", ComparisonKernel<GreaterOperation>.self),
  ("GreaterOrEqual", ComparisonKernel<GreaterOrEqualOperation>.self),
  ("GRU", GRU.self),
  ("HardSigmoid", UnaryFloat<HardSigmoidMap>.self),
  ("HardSwish", UnaryFloat<HardSwishMap>.self),
  ("Identity", Identity.self),
  ("If", If.self),
  ("InstanceNormalization", InstanceNormalization.self),
  ("LayerNormalization", LayerNormalization.self),
  ("LeakyRelu", UnaryFloat<LeakyReluMap>.self),
  ("Less", ComparisonKernel<LessOperation>.self),
  ("LessOrEqual", ComparisonKernel<LessOrEqualOperation>.self),
  ("Log", UnaryFloat<LogMap>.self),
  ("LogSoftmax", Softmax<LogSoftmaxNormalization>.self),
  ("LRN", LRN.self),
  ("LSTM", LSTM.self),
  ("MatMul", MatMul.self),
  ("Max", Variadic<MaxOperation>.self),
  ("MaxPool", MaxPool.self),
  ("Mean", Mean.self),
  ("Min", Variadic<MinOperation>.self),
  ("Mul", BinaryArithmetic<MulOperation>.self),
  ("Neg", SignedUnary<NegOperation>.self),
  ("Not", Not.self),
  ("Or", LogicalKernel<OrOperation>.self),
  ("Pad", Pad.self),
  ("Pow", Pow.self),
  ("PRelu", PRelu.self),
  ("Range", RangeKernel.self),
  ("ReduceL1", ReduceKernel<ReduceL1Operation>.self),
  ("ReduceL2", ReduceKernel<ReduceL2Operation>.self),
  ("ReduceLogSum", ReduceKernel<ReduceLogSumOperation>.self),
  ("ReduceMax", ReduceKernel<ReduceMaxOperation>.self),
  ("ReduceMean", ReduceKernel<ReduceMeanOperation>.self),
  ("ReduceMin", ReduceKernel<ReduceMinOperation>.self),
  ("ReduceProd", ReduceKernel<ReduceProdOperation>.self),
  ("ReduceSum", ReduceKernel<ReduceSumOperation>.self),
  ("ReduceSumSquare", ReduceKernel<ReduceSumSquareOperation>.self),
  ("Relu", UnaryFloat<ReluMap>.self),
  ("Reshape", Reshape.self),
  ("Resize", Resize.self),
  ("RNN", RNN.self),
  ("Shape", Shape.self),
  ("Sigmoid", UnaryFloat<SigmoidMap>.self),
  ("Size", Size.self),
  ("Slice", SliceKernel.self),
  ("Softmax", Softmax<SoftmaxNormalization>.self),
  ("SpaceToDepth", SpaceToDepth.self),
  ("Sqrt", UnaryFloat<SqrtMap>.self),
  ("Split", Split.self),
  ("Squeeze", Squeeze.self),
  ("Sub", BinaryArithmetic<SubOperation>.self),
  ("Sum", Variadic<AddOperation>.self),
  ("Tanh", UnaryFloat<TanhMap>.self),
  ("Tile", Tile.self),
  ("Transpose", Transpose.self),
  ("Unsqueeze", Unsqueeze.self),
  ("Upsample", Upsample.self),
  ("Where", Where.self),
  ("Xor", LogicalKernel<XorOperation>.self),
]
