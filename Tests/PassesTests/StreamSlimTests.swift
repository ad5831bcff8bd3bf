import Graph
import GraphTesting
@testable import Passes
import Runtime
import Testing

@Suite struct StreamSlimTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  // MARK: The worked example of METHODS 1.7.3

  @Test func workedExampleKernelStride1() throws {
    let w1 = try #require(Kernel4(Tensor(floats: [1, 2, 3, 4], shape: [1, 1, 2, 2])))
    let composite = w1.boxed([2, 2], step: [1, 1], dilation: [1, 1])
    #expect(composite.shape == [1, 1, 3, 3])
    #expect(composite.values == [0.25, 0.75, 0.50, 1.00, 2.50, 1.50, 0.75, 1.75, 1.00])
  }

  @Test func workedExampleKernelStride2() throws {
    // Conv stride 2: four copies of W1/4, tiled at offsets 0 and 2.
    let w1 = try #require(Kernel4(Tensor(floats: [1, 2, 3, 4], shape: [1, 1, 2, 2])))
    let composite = w1.boxed([2, 2], step: [2, 2], dilation: [1, 1])
    #expect(composite.shape == [1, 1, 4, 4])
    #expect(composite.values == [0.25, 0.5, 0.25, 0.5, 0.75, 1, 0.75, 1, 0.25, 0.5, 0.25, 0.5, 0.75, 1, 0.75, 1])
  }

  @Test func workedExampleGraph() throws {
    let outcome = try assertRewrite(
      StreamSlim.self,
      """
      \(header)
      g (float[1,1,5,5] x) => (float[1,1,2,2] y) <float[1,1,2,2] w = {1.0, 2.0, 3.0, 4.0}, float[1] b = {0.5}> {
        c = Conv <kernel_shape = [2, 2]> (x, w, b)
        y = AveragePool <kernel_shape = [2, 2], strides = [2, 2]> (c)
      }
      """,
      becomes: """
        \(header)
        g (float[1,1,5,5] x) => (float[1,1,2,2] y) <float[1] b = {0.5}, float[1,1,3,3] w_merged = {0.25, 0.75, 0.5, 1.0, 2.5, 1.5, 0.75, 1.75, 1.0}> {
          y = Conv <kernel_shape = [3, 3], pads = [0, 0, 0, 0], strides = [2, 2]> (x, w_merged, b)
        }
        """)
    // X = 0…24 row-major gives [[71.5, 91.5], [171.5, 191.5]], the first one by hand.
    let x = NDArray((0..<25).map { Float($0) }, shape: [1, 1, 5, 5])
    let y = try #require(try Session(model: outcome.model, options: SessionOptions(threadCount: 1)).run(["x": x])["y"])
    #expect(y.scalars(as: Float.self) == [71.5, 91.5, 171.5, 191.5])
    #expect(outcome.report.changes.filter { $0.pass == StreamSlim.name }.map(\.description) == [
      "Conv →c + AveragePool →y merged into Conv →c (kernel 3×3 stride 2): MACs 80 → 36"
    ])
  }

  // MARK: Conv → AveragePool

  /// Conv 2→3 channels (or depthwise) on 1×2×13×13, then AveragePool; the result must be one Conv
  /// with `kernel` and `strides`.
  @Test(arguments: [
    // conv attributes, weight shape, pool attributes, merged kernel, merged stride
    ("kernel_shape = [3, 3]", "3,2,3,3", "kernel_shape = [2, 2], strides = [2, 2]", [4, 4], [2, 2]),
    ("kernel_shape = [3, 3]", "3,2,3,3", "kernel_shape = [3, 3], strides = [3, 3]", [5, 5], [3, 3]),
    ("kernel_shape = [3, 3], strides = [2, 2]", "3,2,3,3", "kernel_shape = [2, 2], strides = [2, 2]", [5, 5], [4, 4]),
    ("kernel_shape = [3, 3], dilations = [2, 2]", "3,2,3,3", "kernel_shape = [2, 2], strides = [2, 2]", [6, 6], [2, 2]),
    ("kernel_shape = [3, 3], pads = [1, 2, 0, 1]", "3,2,3,3", "kernel_shape = [2, 2], strides = [2, 2]", [4, 4], [2, 2]),
    ("kernel_shape = [2, 3], pads = [1, 1, 1, 1]", "3,2,2,3", "kernel_shape = [2, 3], strides = [2, 3]", [3, 5], [2, 3]),
    ("kernel_shape = [3, 3], group = 2", "4,1,3,3", "kernel_shape = [2, 2], strides = [2, 2]", [4, 4], [2, 2]),
    ("kernel_shape = [3, 3], auto_pad = \"SAME_UPPER\"", "3,2,3,3", "kernel_shape = [2, 2], strides = [2, 2]", [4, 4], [2, 2]),
  ])
  func convThenAveragePool(conv: String, weight: String, pool: String, kernel: [Int], strides: [Int]) throws {
    let count = weight.split(separator: ",").map { Int($0)! }.reduce(1, *)
    let outChannels = Int(weight.split(separator: ",")[0])!
    let input = """
      \(header)
      g (float[2,2,13,13] x) => (float y) <float[\(weight)] w = \(floatLiteral(count, seed: 3)), float[\(outChannels)] b = \(floatLiteral(outChannels, seed: 4))> {
        c = Conv <\(conv)> (x, w, b)
        p = AveragePool <\(pool)> (c)
        y = Relu (p)
      }
      """
    try expectMerged(input, into: "Conv", kernel: kernel, strides: strides, gone: ["AveragePool"])
  }

  // MARK: AveragePool → Conv

  @Test func averagePoolThenNarrowingConv() throws {
    // 4 channels pooled 2×2/2, then a 1×1 conv to one channel: 4·4 + 4 MACs per pixel become 16.
    try assertRewrite(
      StreamSlim.self,
      """
      \(header)
      g (float[1,4,4,4] x) => (float[1,1,2,2] y) <float[1,4,1,1] w = {1.0, -2.0, 0.5, 4.0}, float[1] b = {0.25}> {
        a = AveragePool <kernel_shape = [2, 2], strides = [2, 2]> (x)
        y = Conv (a, w, b)
      }
      """,
      becomes: """
        \(header)
        g (float[1,4,4,4] x) => (float[1,1,2,2] y) <float[1] b = {0.25}, float[1,4,2,2] w_merged = {0.25, 0.25, 0.25, 0.25, -0.5, -0.5, -0.5, -0.5, 0.125, 0.125, 0.125, 0.125, 1.0, 1.0, 1.0, 1.0}> {
          y = Conv <kernel_shape = [2, 2], pads = [0, 0, 0, 0], strides = [2, 2]> (x, w_merged, b)
        }
        """)
  }

  @Test func averagePoolThenDilatedStridedConvForced() throws {
    // A 3×3 conv after a pool costs more merged (kernel 2·1·2+2 = 6): only with force.
    let input = """
      \(header)
      g (float[2,3,16,16] x) => (float y) <float[2,3,3,3] w = \(floatLiteral(54, seed: 5))> {
        a = AveragePool <kernel_shape = [2, 2], strides = [2, 2]> (x)
        c = Conv <kernel_shape = [3, 3], strides = [1, 2], dilations = [1, 2]> (a, w)
        y = Relu (c)
      }
      """
    try assertNoRewrite(StreamSlim.self, input)
    try expectMerged(input, options: ["force": "true"], into: "Conv", kernel: [6, 10], strides: [2, 4], gone: ["AveragePool"])
  }

  // MARK: Conv → Conv

  @Test func convThenNarrowingOneByOne() throws {
    // 3×3 (2→4) then 1×1 (4→1): the per-pixel product W2·W1, biases through W2.
    try expectMerged(
      """
      \(header)
      g (float[2,2,8,8] x) => (float y) <float[4,2,3,3] w1 = \(floatLiteral(72, seed: 6)), float[4] b1 = \(floatLiteral(4, seed: 7)), float[1,4,1,1] w2 = \(floatLiteral(4, seed: 8)), float[1] b2 = {0.5}> {
        c = Conv <kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]> (x, w1, b1)
        d = Conv (c, w2, b2)
        y = Relu (d)
      }
      """, into: "Conv", kernel: [3, 3], strides: [2, 2], gone: [])
  }

  @Test func oneByOneChainWithoutBiases() throws {
    try assertRewrite(
      StreamSlim.self,
      """
      \(header)
      g (float[1,2,3,3] x) => (float[1,1,3,3] y) <float[2,2,1,1] w1 = {1.0, 2.0, -1.0, 0.5}, float[1,2,1,1] w2 = {2.0, 4.0}> {
        c = Conv (x, w1)
        y = Conv (c, w2)
      }
      """,
      becomes: """
        \(header)
        g (float[1,2,3,3] x) => (float[1,1,3,3] y) <float[1,2,1,1] w2_merged = {-2.0, 6.0}> {
          y = Conv <kernel_shape = [1, 1], pads = [0, 0, 0, 0], strides = [1, 1]> (x, w2_merged)
        }
        """)
  }

  @Test func threeByThreeThenWideningOneByOneStaysUnlessForced() throws {
    let input = """
      \(header)
      g (float[1,4,8,8] x) => (float y) <float[4,4,3,3] w1 = \(floatLiteral(144, seed: 9)), float[16,4,1,1] w2 = \(floatLiteral(64, seed: 10))> {
        c = Conv <kernel_shape = [3, 3]> (x, w1)
        d = Conv (c, w2)
        y = Relu (d)
      }
      """
    try assertNoRewrite(StreamSlim.self, input)
    try expectMerged(input, options: ["force": "true"], into: "Conv", kernel: [3, 3], strides: [1, 1], gone: [])
  }

  // MARK: Gemm / MatMul → Gemm / MatMul

  @Test func gemmThenGemm() throws {
    // y = 2·(0.5·x·B1ᵀ + C1)·B2ᵀ + 1·C2, with B1 [2,4] (transB), B2 [1,2] (transB).
    // W = 0.5·B1ᵀ·2·B2ᵀ = B1ᵀ·B2ᵀ → [4,1]: rows of B1 weighted by B2 = {1, -1}; b = C1·2·B2ᵀ + C2.
    try assertRewrite(
      StreamSlim.self,
      """
      \(header)
      g (float[3,4] x) => (float[3,1] y) <float[2,4] b1 = {1.0, 2.0, 3.0, 4.0, 0.5, 0.5, 0.5, 0.5}, float[2] c1 = {1.0, 0.25}, float[1,2] b2 = {1.0, -1.0}, float[1] c2 = {0.5}> {
        h = Gemm <alpha = 0.5, transB = 1> (x, b1, c1)
        y = Gemm <alpha = 2.0, transB = 1> (h, b2, c2)
      }
      """,
      becomes: """
        \(header)
        g (float[3,4] x) => (float[3,1] y) <float[1,4] b2_merged = {0.5, 1.5, 2.5, 3.5}, float[1] c2_merged = {2.0}> {
          y = Gemm <transB = 1> (x, b2_merged, c2_merged)
        }
        """)
  }

  @Test func matMulThenMatMul() throws {
    try expectMerged(
      """
      \(header)
      g (float[2,3,8] x) => (float y) <float[8,4] b1 = \(floatLiteral(32, seed: 11)), float[4,2] b2 = \(floatLiteral(8, seed: 12))> {
        h = MatMul (x, b1)
        m = MatMul (h, b2)
        y = Relu (m)
      }
      """, into: "MatMul", gone: [])
  }

  @Test func matMulThenGemm() throws {
    try expectMerged(
      """
      \(header)
      g (float[3,8] x) => (float y) <float[8,4] b1 = \(floatLiteral(32, seed: 13)), float[2,4] b2 = \(floatLiteral(8, seed: 14)), float[2] c2 = {1.0, -1.0}> {
        h = MatMul (x, b1)
        m = Gemm <transB = 1, beta = 0.5> (h, b2, c2)
        y = Relu (m)
      }
      """, into: "Gemm", gone: ["MatMul"])
  }

  @Test func linearBottleneckStays() throws {
    // 8 → 2 → 8: 32 MACs per row as a pair, 64 merged.
    try assertNoRewrite(
      StreamSlim.self,
      """
      \(header)
      g (float[3,8] x) => (float[3,8] y) <float[8,2] b1 = \(floatLiteral(16, seed: 15)), float[2,8] b2 = \(floatLiteral(16, seed: 16))> {
        h = MatMul (x, b1)
        y = MatMul (h, b2)
      }
      """)
  }

  // MARK: Guards

  /// Conv 3×3 then AveragePool 2×2/2, which merges, with one thing changed.
  @Test(arguments: [
    // a nonlinearity between
    ("", "r = Relu (c)\n    y = AveragePool <kernel_shape = [2, 2], strides = [2, 2]> (r)", ""),
    // the intermediate read twice
    ("", "p = AveragePool <kernel_shape = [2, 2], strides = [2, 2]> (c)\n    y = Add (p, p)\n    z = Relu (c)", ", float z"),
    // the intermediate a graph output
    ("", "y = AveragePool <kernel_shape = [2, 2], strides = [2, 2]> (c)", ", float c"),
    // pool pads
    ("", "y = AveragePool <kernel_shape = [2, 2], strides = [2, 2], pads = [1, 1, 1, 1]> (c)", ""),
    // ceil mode
    ("", "y = AveragePool <kernel_shape = [2, 2], strides = [2, 2], ceil_mode = 1> (c)", ""),
    // a pool that is not 2-D
    ("", "y = MaxPool <kernel_shape = [2, 2], strides = [2, 2]> (c)", ""),
    // auto_pad with symbolic spatial sizes
    ("auto_pad = \"SAME_UPPER\", ", "y = AveragePool <kernel_shape = [2, 2], strides = [2, 2]> (c)", "dynamic"),
    // unknown shapes
    ("", "y = AveragePool <kernel_shape = [2, 2], strides = [2, 2]> (c)", "dynamic"),
    // the cost model: a 3×3/1 pool makes the kernel 5×5 for one pixel per pixel
    ("", "y = AveragePool <kernel_shape = [3, 3]> (c)", ""),
  ])
  func convAveragePoolGuard(convAttributes: String, body: String, extra: String) throws {
    let dynamic = extra == "dynamic"
    let x = dynamic ? "float[1,2,H,W] x" : "float[1,2,12,12] x"
    let outputs = "float y" + (dynamic ? "" : extra)
    try assertNoRewrite(
      StreamSlim.self,
      """
      \(header)
      g (\(x)) => (\(outputs)) <float[3,2,3,3] w = \(floatLiteral(54, seed: 17))> {
        c = Conv <\(convAttributes)kernel_shape = [3, 3]> (x, w)
        \(body)
      }
      """)
  }

  @Test func weightThatIsAGraphInputStays() throws {
    try assertNoRewrite(
      StreamSlim.self,
      """
      \(header)
      g (float[1,2,12,12] x, float[3,2,3,3] w) => (float y) {
        c = Conv <kernel_shape = [3, 3]> (x, w)
        y = AveragePool <kernel_shape = [2, 2], strides = [2, 2]> (c)
      }
      """)
  }

  @Test func secondConvWithPadsStays() throws {
    try assertNoRewrite(
      StreamSlim.self,
      """
      \(header)
      g (float[1,4,6,6] x) => (float y) <float[4,4,3,3] w1 = \(floatLiteral(144, seed: 18)), float[1,4,1,1] w2 = {1.0, 2.0, 3.0, 4.0}> {
        c = Conv <kernel_shape = [3, 3]> (x, w1)
        y = Conv <pads = [1, 1, 1, 1]> (c, w2)
      }
      """)
  }

  @Test func groupedConvPairStays() throws {
    try assertNoRewrite(
      StreamSlim.self,
      """
      \(header)
      g (float[1,4,6,6] x) => (float y) <float[4,2,3,3] w1 = \(floatLiteral(72, seed: 19)), float[1,4,1,1] w2 = {1.0, 2.0, 3.0, 4.0}> {
        c = Conv <kernel_shape = [3, 3], group = 2> (x, w1)
        y = Conv (c, w2)
      }
      """)
  }

  @Test func convWithPadsAfterAPoolStays() throws {
    try assertNoRewrite(
      StreamSlim.self,
      """
      \(header)
      g (float[1,4,4,4] x) => (float y) <float[1,4,1,1] w = {1.0, -2.0, 0.5, 4.0}> {
        a = AveragePool <kernel_shape = [2, 2], strides = [2, 2]> (x)
        y = Conv <pads = [1, 1, 1, 1]> (a, w)
      }
      """)
  }

  @Test func gemmWithTransposedInputStays() throws {
    try assertNoRewrite(
      StreamSlim.self,
      """
      \(header)
      g (float[8,3] x) => (float y) <float[8,4] b1 = \(floatLiteral(32, seed: 20)), float[4,2] b2 = \(floatLiteral(8, seed: 21))> {
        h = Gemm <transA = 1> (x, b1)
        y = Gemm (h, b2)
      }
      """)
  }

  @Test func linearIntermediateThatIsAGraphOutputStays() throws {
    try assertNoRewrite(
      StreamSlim.self,
      """
      \(header)
      g (float[3,8] x) => (float[3,2] y, float[3,4] h) <float[8,4] b1 = \(floatLiteral(32, seed: 22)), float[4,2] b2 = \(floatLiteral(8, seed: 23))> {
        h = MatMul (x, b1)
        y = MatMul (h, b2)
      }
      """)
  }

  @Test func matMulWithTheWeightFirstStays() throws {
    // W·x is not x·W: the pattern only reads a constant second operand.
    try assertNoRewrite(
      StreamSlim.self,
      """
      \(header)
      g (float[8,3] x) => (float y) <float[4,8] b1 = \(floatLiteral(32, seed: 24)), float[3,2] b2 = \(floatLiteral(6, seed: 25))> {
        h = MatMul (b1, x)
        y = MatMul (h, b2)
      }
      """)
  }

  // MARK: Helpers

  /// Runs the pass on `input` and checks that it left one `op` (with `kernel` and `strides` for a
  /// Conv), none of `gone`, and the same outputs in rebirth's runtime.
  private func expectMerged(
    _ input: String, options: [String: String] = [:], into op: String, kernel: [Int]? = nil, strides: [Int]? = nil,
    gone: [String], sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    let outcome = try runPass(StreamSlim.self, options: options, on: input)
    let changes = outcome.report.changes.filter { $0.pass == StreamSlim.name }
    #expect(changes.count == 1, "\(changes.map(\.description))", sourceLocation: sourceLocation)
    let graph = outcome.model.graph
    let merged = graph.nodeIDs.map { graph[$0] }.filter { $0.opType == op }
    #expect(merged.count == 1, "\(outcome.text)", sourceLocation: sourceLocation)
    for node in merged {
      if let kernel { #expect(node.attribute("kernel_shape")?.ints == kernel.map(Int64.init), sourceLocation: sourceLocation) }
      if let strides { #expect(node.attribute("strides")?.ints == strides.map(Int64.init), sourceLocation: sourceLocation) }
    }
    for op in gone {
      #expect(!graph.nodeIDs.contains { graph[$0].opType == op }, "\(op) left", sourceLocation: sourceLocation)
    }
    try expectSameOutputs(try Model(parsing: input), outcome.model, sourceLocation: sourceLocation)
  }
}
