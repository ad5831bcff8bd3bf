import Graph
import GraphTesting
import Passes
import Testing

@Suite struct BranchSlimTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  // MARK: Sibling convs

  @Test func inceptionOneByOnesIntoConcatThroughRelu() throws {
    try assertRewrite(
      BranchSlim.self,
      """
      \(header)
      g (float[1,2,4,4] x) => (float[1,3,4,4] y) <float[1,2,1,1] wa = {1.0, 2.0}, float[1] ba = {0.5},
        float[2,2,1,1] wb = {-1.0, 1.0, 0.5, 0.25}> {
        a = Conv <kernel_shape = [1, 1]> (x, wa, ba)
        b = Conv (x, wb)
        ra = Relu (a)
        rb = Relu (b)
        y = Concat <axis = 1> (ra, rb)
      }
      """,
      becomes: """
        \(header)
        g (float[1,2,4,4] x) => (float[1,3,4,4] y) <float[3,2,1,1] a_b_weight = {1.0, 2.0, -1.0, 1.0, 0.5, 0.25},
          float[3] a_b_bias = {0.5, 0.0, 0.0}> {
          [a_b] a_b = Conv <kernel_shape = [1, 1], pads = [0, 0, 0, 0]> (x, a_b_weight, a_b_bias)
          [ra_rb] y = Relu (a_b)
        }
        """)
  }

  @Test func siblingsWithOtherReadersGetASplit() throws {
    try assertRewrite(
      BranchSlim.self,
      """
      \(header)
      g (float[1,2,3,3] x) => (float[1,1,3,3] y, float[1,2,3,3] z) <float[1,2,1,1] wa = {1.0, 2.0},
        float[2,2,1,1] wb = {-1.0, 1.0, 0.5, 0.25}> {
        a = Conv (x, wa)
        b = Conv (x, wb)
        y = Relu (a)
        z = Sigmoid (b)
      }
      """,
      becomes: """
        \(header)
        g (float[1,2,3,3] x) => (float[1,1,3,3] y, float[1,2,3,3] z) <float[3,2,1,1] a_b_weight = {1.0, 2.0, -1.0, 1.0, 0.5, 0.25},
          int64[2] a_b_split_sizes = {1, 2}> {
          [a_b] a_b = Conv <kernel_shape = [1, 1], pads = [0, 0, 0, 0]> (x, a_b_weight)
          [a_b_split] a_part, b_part = Split <axis = 1> (a_b, a_b_split_sizes)
          y = Relu (a_part)
          z = Sigmoid (b_part)
        }
        """)
  }

  @Test func opsetElevenSplitTakesAnAttribute() throws {
    let outcome = try runPass(
      BranchSlim.self,
      on: """
        <ir_version: 6, opset_import: ["" : 11]>
        g (float[1,2,3,3] x) => (float[1,1,3,3] y, float[1,1,3,3] z) <float[1,2,1,1] wa = {1.0, 2.0},
          float[1,2,1,1] wb = {-1.0, 1.0}> {
          y = Conv (x, wa)
          z = Conv (x, wb)
        }
        """)
    let split = outcome.model.graph.nodeIDs.map { outcome.model.graph[$0] }.first { $0.opType == "Split" }
    #expect(split?.attribute("split")?.ints == [1, 1], "\(outcome.text)")
    #expect(split?.inputs.count == 1)
  }

  /// A 1×1 (pad 0) and a 3×3 (pad 1) with the budget raised: the 1×1 goes to the centre.
  @Test func mixedKernelsPadCentrallyWhenTheBudgetAllows() throws {
    let outcome = try assertRewrite(
      BranchSlim.self, options: ["max-padding-overhead": "10"],
      """
      \(header)
      g (float[2,3,5,5] x) => (float[2,5,5,5] y) <float[2,3,1,1] w1 = \(floatLiteral(6, seed: 1)),
        float[3,3,3,3] w3 = \(floatLiteral(81, seed: 2)), float[3] b3 = {0.1, 0.2, 0.3}> {
        a = Conv <pads = [0, 0, 0, 0]> (x, w1)
        b = Conv <pads = [1, 1, 1, 1]> (x, w3, b3)
        y = Concat <axis = 1> (a, b)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3,5,5] x) => (float[2,5,5,5] y) <float[5,3,3,3] a_b_weight = \(mergedOneByOneAndThree()),
          float[5] a_b_bias = {0.0, 0.0, 0.1, 0.2, 0.3}> {
          [a_b] y = Conv <kernel_shape = [3, 3], pads = [1, 1, 1, 1]> (x, a_b_weight, a_b_bias)
        }
        """)
    #expect(outcome.report.changes.first?.description.contains("MACs") == true)
  }

  /// An even kernel with asymmetric pads aligns inside a 3×3 pad-1 window (METHODS §1.7.5), and a
  /// stride of 2 is shared.
  @Test func evenKernelAndStrideTwoAlign() throws {
    try runAndCompare(
      options: ["max-padding-overhead": "10"],
      """
      \(header)
      g (float[1,2,6,6] x) => (float[1,2,3,3] y, float[1,3,3,3] z) <float[2,2,2,2] w2 = \(floatLiteral(16, seed: 3)),
        float[3,2,3,3] w3 = \(floatLiteral(54, seed: 4))> {
        y = Conv <pads = [0, 0, 1, 1], strides = [2, 2]> (x, w2)
        z = Conv <pads = [1, 1, 1, 1], strides = [2, 2]> (x, w3)
      }
      """, expectChanges: 1)
  }

  @Test func cheapSiblingsMergeAndTheExpensiveOneStays() throws {
    let outcome = try runAndCompare(
      """
      \(header)
      g (float[1,4,6,6] x) => (float[1,2,6,6] a, float[1,2,6,6] b, float[1,1,6,6] c)
        <float[2,4,1,1] wa = \(floatLiteral(8, seed: 5)), float[2,4,1,1] wb = \(floatLiteral(8, seed: 6)),
         float[1,4,5,5] wc = \(floatLiteral(100, seed: 7))> {
        a = Conv (x, wa)
        b = Conv (x, wb)
        c = Conv <pads = [2, 2, 2, 2]> (x, wc)
      }
      """, expectChanges: 1)
    let convs = outcome.model.graph.nodeIDs.map { outcome.model.graph[$0] }.filter { $0.opType == "Conv" }
    #expect(convs.map(\.name).sorted() == ["", "a_b"], "\(outcome.text)")
  }

  // MARK: Summed convs

  @Test func repVGGBlockBecomesOneConv() throws {
    let outcome = try runAndCompare(
      """
      \(header)
      g (float[2,3,5,5] x) => (float[2,3,5,5] y) <float[3,3,3,3] w3 = \(floatLiteral(81, seed: 8)),
        float[3] b3 = {0.1, -0.2, 0.3}, float[3,3,1,1] w1 = \(floatLiteral(9, seed: 9)), float[3] b1 = {1.0, 2.0, 3.0}> {
        c3 = Conv <pads = [1, 1, 1, 1]> (x, w3, b3)
        c1 = Conv (x, w1, b1)
        s = Add (c3, c1)
        t = Add (s, x)
        y = Relu (t)
      }
      """, expectChanges: 2)
    let ops = outcome.model.graph.nodeIDs.map { outcome.model.graph[$0] }
    #expect(ops.map(\.opType).sorted() == ["Conv", "Relu"], "\(outcome.text)")
    #expect(ops.contains { $0.name == "c3_c1_identity" }, "\(outcome.text)")
  }

  @Test func depthwiseIdentitySum() throws {
    try runAndCompare(
      """
      \(header)
      g (float[1,4,5,5] x) => (float[1,4,5,5] y) <float[4,1,3,3] w = \(floatLiteral(36, seed: 10))> {
        c = Conv <group = 4, pads = [1, 1, 1, 1]> (x, w)
        y = Add (x, c)
      }
      """, expectChanges: 1)
  }

  @Test func identityGoldenIsACentreTap() throws {
    try assertRewrite(
      BranchSlim.self,
      """
      \(header)
      g (float[1,2,3,3] x) => (float[1,2,3,3] y) <float[2,2,1,1] w = {1.0, 2.0, 3.0, 4.0}> {
        c = Conv (x, w)
        y = Add (c, x)
      }
      """,
      becomes: """
        \(header)
        g (float[1,2,3,3] x) => (float[1,2,3,3] y) <float[2,2,1,1] c_identity_weight = {2.0, 2.0, 3.0, 5.0}> {
          [c_identity] y = Conv <kernel_shape = [1, 1], pads = [0, 0, 0, 0]> (x, c_identity_weight)
        }
        """)
  }

  // MARK: Sibling linears

  @Test func qkvProjectionsWithBiases() throws {
    try assertRewrite(
      BranchSlim.self,
      """
      \(header)
      g (float[2,3,2] x) => (float[2,3,1] q, float[2,3,2] k, float[2,3,1] v) <float[2,1] wq = {1.0, 2.0},
        float[2,2] wk = {3.0, 4.0, 5.0, 6.0}, float[2,1] wv = {7.0, 8.0}, float[1] bq = {0.5}, float[2] bk = {1.0, 2.0}> {
        mq = MatMul (x, wq)
        q = Add (mq, bq)
        mk = MatMul (x, wk)
        k = Add (bk, mk)
        v = MatMul (x, wv)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3,2] x) => (float[2,3,1] q, float[2,3,2] k, float[2,3,1] v) <float[2,4] mq_mk_v_weight = {1.0, 3.0, 4.0, 7.0, 2.0, 5.0, 6.0, 8.0},
          float[4] mq_mk_v_bias = {0.5, 1.0, 2.0, 0.0}, int64[3] mq_mk_v_split_sizes = {1, 2, 1}> {
          [mq_mk_v] mq_mk_v = MatMul (x, mq_mk_v_weight)
          [mq_mk_v_add] mq_mk_v_add = Add (mq_mk_v, mq_mk_v_bias)
          [mq_mk_v_split] q, k, v = Split <axis = 2> (mq_mk_v_add, mq_mk_v_split_sizes)
        }
        """)
  }

  @Test func gemmSiblingsFoldAlphaBetaAndTransB() throws {
    try runAndCompare(
      """
      \(header)
      g (float[3,4] x) => (float[3,2] a, float[3,3] b) <float[2,4] wa = \(floatLiteral(8, seed: 11)),
        float[4,3] wb = \(floatLiteral(12, seed: 12)), float[2] ca = {1.0, -1.0}, float cb = {0.5}> {
        a = Gemm <alpha = 2.0, beta = 0.5, transB = 1> (x, wa, ca)
        b = Gemm (x, wb, cb)
      }
      """, expectChanges: 1)
  }

  // MARK: Guards

  /// One case per guard: the body, and the extent of `a` (so the declared outputs are what shape
  /// inference finds).
  @Test(arguments: [
    // different strides
    ("a = Conv <strides = [2, 2]> (x, wa)", 2),
    // a sibling with groups
    ("a = Conv <group = 2> (x, wg)", 4),
    // a weight that is a graph input
    ("a = Conv (x, wi)", 4),
    // unresolved auto_pad
    ("a = Conv <auto_pad = \"SAME_UPPER\"> (x, wa)", 4),
    // different output sizes
    ("a = Conv (x, w3)", 2),
    // different dtypes (a float64 weight)
    ("a = Conv (x, wd)", 4),
  ])
  func siblingGuards(sibling: String, extent: Int) throws {
    try assertNoRewrite(
      BranchSlim.self,
      """
      \(header)
      g (float[1,2,4,4] x, float[1,2,1,1] wi) => (float[1,1,\(extent),\(extent)] a, float[1,1,4,4] b) <float[1,2,1,1] wa = {1.0, 2.0},
        float[1,2,1,1] wb = {3.0, 4.0}, float[1,1,1,1] wg = {5.0}, float[1,2,3,3] w3 = \(floatLiteral(18)),
        double[1,2,1,1] wd = {1.0, 2.0}> {
        \(sibling)
        b = Conv (x, wb)
      }
      """)
  }

  @Test func unknownSpatialExtentsDecline() throws {
    try assertNoRewrite(
      BranchSlim.self,
      """
      \(header)
      g (float[1,2,H,W] x) => (float[1,1,H,W] a, float[1,1,H,W] b) <float[1,2,1,1] wa = {1.0, 2.0}, float[1,2,1,1] wb = {3.0, 4.0}> {
        a = Conv (x, wa)
        b = Conv (x, wb)
      }
      """)
  }

  @Test func paddingOverheadAboveBudgetDeclines() throws {
    try assertNoRewrite(
      BranchSlim.self,
      """
      \(header)
      g (float[1,2,5,5] x) => (float[1,1,5,5] a, float[1,1,5,5] b) <float[1,2,1,1] wa = {1.0, 2.0},
        float[1,2,3,3] w3 = \(floatLiteral(18))> {
        a = Conv (x, wa)
        b = Conv <pads = [1, 1, 1, 1]> (x, w3)
      }
      """)
  }

  @Test func summedConvWithSecondUseDeclines() throws {
    try assertNoRewrite(
      BranchSlim.self,
      """
      \(header)
      g (float[1,2,3,3] x) => (float[1,2,3,3] y, float[1,2,3,3] c) <float[2,2,1,1] w = {1.0, 2.0, 3.0, 4.0}> {
        c = Conv (x, w)
        y = Add (c, x)
      }
      """)
  }

  @Test func matMulWeightThatIsAGraphInputDeclines() throws {
    try assertNoRewrite(
      BranchSlim.self,
      """
      \(header)
      g (float[3,2] x, float[2,2] wk) => (float[3,2] q, float[3,2] k) <float[2,2] wq = {1.0, 2.0, 3.0, 4.0}> {
        q = MatMul (x, wq)
        k = MatMul (x, wk)
      }
      """)
  }

  @Test func onByDefaultForTMFOnly() {
    #expect(BranchSlim.isDefault(for: .tmf))
    #expect(!BranchSlim.isDefault(for: .onnx))
    #expect(!PassRegistry.defaults.contains { $0.name == BranchSlim.name })
    #expect(BranchSlim.targetNote?.contains("Split") == true)
    #expect(PassRegistry.passes(for: .exact, target: .tmf).contains { $0.name == BranchSlim.name })
    #expect(!PassRegistry.passes(for: .exact, target: .onnx).contains { $0.name == BranchSlim.name })
  }

  // MARK: Helpers

  /// Runs the pass, checks the change count and the outputs against the input's in rebirth's runtime.
  @discardableResult
  private func runAndCompare(
    options: [String: String] = [:], _ input: String, expectChanges: Int, sourceLocation: SourceLocation = #_sourceLocation
  ) throws -> RewriteOutcome {
    let outcome = try runPass(BranchSlim.self, options: options, on: input)
    let changes = outcome.report.changes.filter { $0.pass == BranchSlim.name }
    #expect(changes.count == expectChanges, "\(changes.map(\.description))", sourceLocation: sourceLocation)
    try expectSameOutputs(try Model(parsing: input), outcome.model, sourceLocation: sourceLocation)
    return outcome
  }

  /// The expected stacked weight of ``mixedKernelsPadCentrallyWhenTheBudgetAllows()``: the 1×1
  /// kernels at the centre of zero 3×3 windows, then the 3×3 kernels.
  private func mergedOneByOneAndThree() -> String {
    func parse(_ literal: String) -> [String] {
      literal.dropFirst().dropLast().split(separator: ",").map { String($0.filter { $0 != " " }) }
    }
    let one = parse(floatLiteral(6, seed: 1)), three = parse(floatLiteral(81, seed: 2))
    var values: [String] = []
    for v in one { values += Array(repeating: "0.0", count: 4) + [v] + Array(repeating: "0.0", count: 4) }
    values += three
    return "{" + values.joined(separator: ", ") + "}"
  }

  /// Siblings each read by the same Relu but not by one Concat: the Relu runs once on the merged
  /// conv, before the Split, so fuse-activation can fuse it.
  @Test func sameActivationOnEverySiblingIsAppliedOnceBeforeTheSplit() throws {
    let input = """
      \(header)
      g (float[1,3,4,4] x) => (float[1,2,4,4] y, float[1,3,4,4] z) <float[2,3,1,1] w1 = \(floatLiteral(6, seed: 4)),
        float[3,3,1,1] w2 = \(floatLiteral(9, seed: 5))> {
        a = Conv (x, w1)
        b = Conv (x, w2)
        y = Relu (a)
        r = Relu (b)
        z = Sigmoid (r)
      }
      """
    let outcome = try runPass(BranchSlim.self, on: input)
    let ops = outcome.model.graph.nodeIDs.map { outcome.model.graph[$0].opType }
    #expect(ops.filter { $0 == "Relu" }.count == 1)
    #expect(ops.filter { $0 == "Conv" }.count == 1)
    #expect(ops.contains("Split"))
    // The Relu reads the merged conv directly.
    let relu = outcome.model.graph.nodeIDs.map { outcome.model.graph[$0] }.first { $0.opType == "Relu" }!
    #expect(outcome.model.graph.producer(of: relu.input(0))?.opType == "Conv")
    try expectSameOutputs(try Model(parsing: input), outcome.model)
  }
}
