import Graph
import GraphTesting
import Passes
import Testing

@Suite struct EliminateCommonSubexpressionsTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  @Test func twoEqualNodesBecomeOne() throws {
    try assertRewrite(
      EliminateCommonSubexpressions.self,
      """
      \(header)
      g (float[2,3] x) => (float[2,3] y) {
        a = Relu (x)
        b = Relu (x)
        y = Add (a, b)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3] x) => (float[2,3] y) {
          a = Relu (x)
          y = Add (a, a)
        }
        """)
  }

  @Test func equalWeightsThenEqualConvsThenEqualActivationsCollapse() throws {
    // w2 equals w1: merged first, the Convs then read the same inputs, and the Relus after them.
    let w = floatLiteral(24, seed: 3)
    try assertRewrite(
      EliminateCommonSubexpressions.self,
      """
      \(header)
      g (float[1,3,4,4] x) => (float[1,2,4,4] y) <float[2,3,2,2] w1 = \(w), float[2,3,2,2] w2 = \(w)> {
        c1 = Conv <pads = [0, 0, 1, 1]> (x, w1)
        c2 = Conv <pads = [0, 0, 1, 1]> (x, w2)
        r1 = Relu (c1)
        r2 = Relu (c2)
        y = Sub (r1, r2)
      }
      """,
      becomes: """
        \(header)
        g (float[1,3,4,4] x) => (float[1,2,4,4] y) <float[2,3,2,2] w1 = \(w)> {
          c1 = Conv <pads = [0, 0, 1, 1]> (x, w1)
          r1 = Relu (c1)
          y = Sub (r1, r1)
        }
        """)
  }

  @Test func equalConstantNodesMerge() throws {
    try assertRewrite(
      EliminateCommonSubexpressions.self,
      """
      \(header)
      g (float[3] x) => (float[3] y) {
        a = Constant <value = float[3] {1.0, 2.0, 3.0}> ()
        b = Constant <value = float[3] {1.0, 2.0, 3.0}> ()
        p = Mul (x, a)
        y = Add (p, b)
      }
      """,
      becomes: """
        \(header)
        g (float[3] x) => (float[3] y) {
          a = Constant <value = float[3] {1.0, 2.0, 3.0}> ()
          p = Mul (x, a)
          y = Add (p, a)
        }
        """)
  }

  @Test func attributesInAnotherOrderStillMatch() throws {
    try assertRewrite(
      EliminateCommonSubexpressions.self,
      """
      \(header)
      g (float[2,3] x) => (float[2,2] y) {
        a = Gemm <alpha = 2.0, transB = 1> (x, x)
        b = Gemm <transB = 1, alpha = 2.0> (x, x)
        y = Add (a, b)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3] x) => (float[2,2] y) {
          a = Gemm <alpha = 2.0, transB = 1> (x, x)
          y = Add (a, a)
        }
        """)
  }

  @Test func everyOutputOfAMultiOutputNodeIsMerged() throws {
    try assertRewrite(
      EliminateCommonSubexpressions.self,
      """
      \(header)
      g (float[4,3] x) => (float[2,3] y, float[2,3] z) {
        a1, a2 = Split <axis = 0> (x)
        b1, b2 = Split <axis = 0> (x)
        y = Sub (a1, b2)
        z = Add (b1, a2)
      }
      """,
      becomes: """
        \(header)
        g (float[4,3] x) => (float[2,3] y, float[2,3] z) {
          a1, a2 = Split <axis = 0> (x)
          y = Sub (a1, a2)
          z = Add (a1, a2)
        }
        """)
  }

  @Test func laterOutputTakesTheGraphOutputName() throws {
    // y is a graph output; a is not, so a takes y's name.
    try assertRewrite(
      EliminateCommonSubexpressions.self,
      """
      \(header)
      g (float[2,3] x) => (float[2,3] y, float[2,3] z) {
        a = Relu (x)
        y = Relu (x)
        z = Sigmoid (a)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3] x) => (float[2,3] y, float[2,3] z) {
          y = Relu (x)
          z = Sigmoid (y)
        }
        """)
  }

  // MARK: Guards

  @Test(arguments: [
    "RandomNormalLike <seed = 1.0> (x)", "RandomUniformLike <seed = 1.0> (x)", "Bernoulli <seed = 1.0> (x)",
    "Dropout (x, r, t)",
  ])
  func nodesThatDrawRandomNumbersStay(op: String) throws {
    try assertNoRewrite(
      EliminateCommonSubexpressions.self,
      """
      \(header)
      g (float[2,3] x, bool t) => (float[2,3] y) <float r = {0.5}> {
        a = \(op)
        b = \(op)
        y = Add (a, b)
      }
      """)
  }

  @Test func randomNodesWithoutInputsStay() throws {
    try assertNoRewrite(
      EliminateCommonSubexpressions.self,
      """
      \(header)
      g () => (float[2,3] y) {
        a = RandomNormal <shape = [2, 3], seed = 1.0> ()
        b = RandomNormal <shape = [2, 3], seed = 1.0> ()
        y = Add (a, b)
      }
      """)
  }

  @Test func differentAttributesStay() throws {
    try assertNoRewrite(
      EliminateCommonSubexpressions.self,
      """
      \(header)
      g (float[2,3] x) => (float[2,3] y) {
        a = LeakyRelu <alpha = 0.1> (x)
        b = LeakyRelu <alpha = 0.2> (x)
        y = Add (a, b)
      }
      """)
  }

  @Test func twoGraphOutputsStay() throws {
    // b cannot be forwarded to a: a is a graph output itself, and both names must survive.
    try assertNoRewrite(
      EliminateCommonSubexpressions.self,
      """
      \(header)
      g (float[2,3] x) => (float[2,3] a, float[2,3] b) {
        a = Relu (x)
        b = Relu (x)
      }
      """)
  }

  @Test func overridableInitializerStays() throws {
    // b1 is a graph input with a default: a caller may pass another value, so it is not b2.
    try assertNoRewrite(
      EliminateCommonSubexpressions.self,
      """
      \(header)
      g (float[3] x, float[3] b1) => (float[3] y) <float[3] b1 = {1.0, 2.0, 3.0}, float[3] b2 = {1.0, 2.0, 3.0}> {
        p = Add (x, b1)
        q = Add (x, b2)
        y = Mul (p, q)
      }
      """)
  }

  @Test func initializerThatIsAGraphOutputStays() throws {
    try assertNoRewrite(
      EliminateCommonSubexpressions.self,
      """
      \(header)
      g (float[3] x) => (float[3] y, float[3] b2) <float[3] b1 = {1.0, 2.0, 3.0}, float[3] b2 = {1.0, 2.0, 3.0}> {
        y = Add (x, b1)
      }
      """)
  }

  @Test func initializerASubgraphReadsStays() throws {
    // b2 equals b1 but the If's branch reads it by name: it is left alone.
    try assertNoRewrite(
      EliminateCommonSubexpressions.self,
      """
      \(header)
      g (bool c, float[3] x) => (float[3] y) <float[3] b1 = {1.0, 2.0, 3.0}, float[3] b2 = {1.0, 2.0, 3.0}> {
        p = Add (x, b1)
        y = If (c) <then_branch: graph = t () => (float[3] r) { r = Add (p, b2) }, else_branch: graph = e () => (float[3] r) { r = Neg (p) }>
      }
      """)
  }

  @Test func nodesWithSubgraphsStay() throws {
    try assertNoRewrite(
      EliminateCommonSubexpressions.self,
      """
      \(header)
      g (bool c, float[2] x) => (float[2] y) {
        a = If (c) <then_branch: graph = t1 () => (float[2] r) { r = Relu (x) }, else_branch: graph = e1 () => (float[2] r) { r = Neg (x) }>
        b = If (c) <then_branch: graph = t2 () => (float[2] r) { r = Relu (x) }, else_branch: graph = e2 () => (float[2] r) { r = Neg (x) }>
        y = Add (a, b)
      }
      """)
  }
}
