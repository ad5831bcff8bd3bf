import Foundation
import Graph
import Linalg
import Testing

@testable import Runtime

@Suite struct IfTests {
  /// y = If(c) { x · 2 } else { x + bias }, where both branches read x (and bias) from outside.
  private func graph() throws -> Graph {
    var thenBranch = Graph(name: "then")
    let tx = try thenBranch.addOuterReference(name: "x")
    let two = try thenBranch.addInitializer(name: "two", Tensor(floats: [2], shape: [1]))
    let mul = try thenBranch.addNode(opType: "Mul", name: "double", inputs: [tx, two], outputs: ["doubled"])
    thenBranch.addOutput(thenBranch[mul].outputs[0]!)
    var elseBranch = Graph(name: "else")
    let ex = try elseBranch.addOuterReference(name: "x")
    let eb = try elseBranch.addOuterReference(name: "bias")
    let add = try elseBranch.addNode(opType: "Add", name: "shift", inputs: [ex, eb], outputs: ["shifted"])
    elseBranch.addOutput(elseBranch[add].outputs[0]!)

    var g = Graph(name: "main")
    let c = try g.addInput(name: "c", type: .tensor(.bool, shape: []))
    _ = try g.addInput(name: "x", type: nil)
    _ = try g.addInitializer(name: "bias", Tensor(floats: [10], shape: [1]))
    let node = try g.addNode(
      opType: "If", name: "branch", inputs: [c], outputs: ["y"],
      attributes: [Attribute("then_branch", .graph(thenBranch)), Attribute("else_branch", .graph(elseBranch))])
    g.addOutput(g[node].outputs[0]!)
    return g
  }

  @Test func runsTheChosenBranchWithOuterValues() throws {
    let session = try Session(graph: try graph(), opset: 17, options: SessionOptions(threadCount: 1))
    let x = floats([1, 2], [2])
    expectClose(try session.run(["c": NDArray(scalar: true), "x": x])["y"]!, [2, 4], shape: [2])
    expectClose(try session.run(["c": NDArray(scalar: false), "x": x])["y"]!, [11, 12], shape: [2])
  }

  @Test func errorsInsideBranchesNameTheInnerNode() throws {
    var g = try graph()
    let node = g.nodeIDs.first { g[$0].opType == "If" }!
    var attributes = g[node].attributes
    var bad = attributes[0].subgraphs[0]
    let inner = bad.nodeIDs[0]
    bad.updateNode(inner) { $0.opType = "Mystery" }
    attributes[0].value = .graph(bad)
    try g.setAttributes(of: node, attributes)
    expectRuntimeError(containing: "unsupported operator 'Mystery' (node 'double')") {
      _ = try Session(graph: g, opset: 17)
    }
  }
}

/// The kernels' own parallel loops give the same results on several threads as on one. The
/// kernels are called directly, so BLAS stays pinned to one thread.
@Suite struct ThreadedKernelsTests {
  func kernel(_ opType: String, _ attributes: [Attribute], inputs: Int = 1, outputs: Int = 1) throws -> any Kernel {
    BLAS.threadCount = 1
    var g = Graph()
    let ids = try (0..<inputs).map { try g.addInput(name: "x\($0)", type: nil) }
    let n = try g.addNode(
      opType: opType, name: "n", inputs: ids, outputs: (0..<outputs).map { "y\($0)" }, attributes: attributes)
    let builder = KernelBuilder(node: g[n], opset: 17, graph: g) { (_: Graph) throws(RuntimeError) -> CompiledGraph in
      throw .graph("no subgraphs here")
    }
    return try KernelRegistry.standard.kernel(for: opType)!.init(builder)
  }

  /// Runs the kernel on one thread and on four: the outputs must be bit for bit the same, or, for
  /// a kernel whose product goes to `BLAS.sgemm` (`throughBLAS`), within 1e-5 of the largest
  /// magnitude. OpenBLAS's threaded sgemm rounds differently from its one-thread sgemm, and its
  /// thread count is process-wide: suites running beside this one change it between the two runs.
  func compare(_ opType: String, _ attributes: [Attribute], _ inputs: [NDArray], throughBLAS: Bool = false) throws {
    let k = try kernel(opType, attributes, inputs: inputs.count)
    let label = NodeLabel(name: "n", opType: opType)
    let one = try k.run(KernelContext(label: label, inputs: inputs, threadCount: 1))
    let four = try k.run(KernelContext(label: label, inputs: inputs, threadCount: 4))
    #expect(one[0].shape == four[0].shape)
    let a = one[0].scalars(as: Float.self), b = four[0].scalars(as: Float.self)
    if throughBLAS {
      let scale = a.map(abs).max() ?? 0
      let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
      #expect(a.count == b.count && scale > 0 && worst <= 1e-5 * scale, "\(opType): \(worst) apart at scale \(scale)")
    } else {
      #expect(a == b, "\(opType)")
    }
  }

  @Test func parallelLoopsMatchSerial() throws {
    let x = random([2, 16, 33, 31], seed: 31)
    try compare(
      "Conv", [.int("group", 16), .ints("pads", [1, 1, 1, 1]), .ints("strides", [2, 1])],
      [x, random([32, 1, 3, 3], seed: 32)])
    try compare("Conv", [.ints("pads", [1, 1, 1, 1])], [x, random([8, 16, 3, 3], seed: 33)], throughBLAS: true)
    try compare("MaxPool", [.ints("kernel_shape", [3, 3]), .ints("strides", [2, 2])], [x])
    try compare("AveragePool", [.ints("kernel_shape", [3, 3]), .ints("pads", [1, 1, 1, 1])], [x])
    try compare("GlobalAveragePool", [], [x])
    try compare("LRN", [.int("size", 5)], [x])
    try compare("Softmax", [.int("axis", 1)], [x])
    try compare("Sigmoid", [], [random([300_000], seed: 34)])
    try compare("Add", [], [random([64, 1, 2000], seed: 35), random([1, 40, 2000], seed: 36)])
    try compare("BatchNormalization", [], [x] + (0..<4).map { random([16], seed: UInt64(40 + $0)).abs() })
  }
}

@Suite struct FastMathTests {
  @Test func expIsAccurateOverTheRange() {
    var worst: Double = 0
    var x: Float = -87
    while x < 88.5 {
      let exact = Foundation.exp(Double(x))
      worst = max(worst, abs(Double(FastMath.exp(x)) - exact) / exact)
      x += 0.0137
    }
    #expect(worst < 3e-7, "worst relative error \(worst)")
    #expect(FastMath.exp(-200) >= 0 && FastMath.exp(-200) < 1e-37)
    #expect(FastMath.exp(200).isFinite)
  }

  @Test func sigmoidAndTanhAreAccurate() {
    var worstSigmoid: Double = 0
    var worstTanh: Double = 0
    var x: Float = -30
    while x < 30 {
      let s = 1 / (1 + Foundation.exp(-Double(x)))
      worstSigmoid = max(worstSigmoid, abs(Double(FastMath.sigmoid(x)) - s) / s)
      let t = Foundation.tanh(Double(x))
      worstTanh = max(worstTanh, abs(Double(FastMath.tanh(x)) - t) / max(abs(t), 1e-30))
      x += 0.00731
    }
    #expect(worstSigmoid < 5e-7, "sigmoid \(worstSigmoid)")
    #expect(worstTanh < 5e-7, "tanh \(worstTanh)")
    #expect(FastMath.tanh(1e-6) == 1e-6)
  }

  @Test func vectorReductions() {
    let values: [Float] = (0..<37).map { Float($0) - 20 }
    values.withUnsafeBufferPointer { p in
      #expect(FastMath.sum(p.baseAddress!, count: 37) == values.reduce(0, +))
      #expect(FastMath.maximum(p.baseAddress!, count: 37) == 16)
      #expect(FastMath.maximum(p.baseAddress!, count: 0) == -.infinity)
    }
  }
}

@Suite struct EmptyTensorTests {
  @Test func kernelsAcceptEmptyInputs() throws {
    let empty = NDArray(zeros: .float, shape: [0, 4])
    #expect(try runFloat("Relu", [empty]).shape == [0, 4])
    #expect(try runFloat("Sigmoid", [empty]).shape == [0, 4])
    #expect(try runFloat("Softmax", [empty]).shape == [0, 4])
    #expect(try runFloat("Gemm", [empty, NDArray(zeros: .float, shape: [4, 3])]).shape == [0, 3])
    #expect(try runFloat("MatMul", [empty, NDArray(zeros: .float, shape: [4, 3])]).shape == [0, 3])
    #expect(try runFloat("Flatten", [empty]).shape == [0, 4])
    #expect(try runFloat("Concat", [empty, empty], attributes: [.int("axis", 0)]).shape == [0, 4])
    #expect(try runFloat("GlobalAveragePool", [NDArray(zeros: .float, shape: [0, 3, 2, 2])]).shape == [0, 3, 1, 1])
    #expect(
      try runFloat(
        "BatchNormalization", [NDArray(zeros: .float, shape: [0, 2, 3])] + (0..<4).map { _ in floats([1, 1], [2]) }
      ).shape == [0, 2, 3])
  }
}

extension NDArray {
  /// Absolute values plus one (positive variances for BatchNormalization).
  func abs() -> NDArray { NDArray(scalars(as: Float.self).map { Swift.abs($0) + 1 }, shape: shape) }
}
