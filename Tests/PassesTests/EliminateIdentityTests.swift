import Graph
import GraphTesting
import Passes
import Testing

@Suite struct EliminateIdentityTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  @Test func identityChainCollapses() throws {
    try assertRewrite(
      EliminateIdentity.self,
      """
      \(header)
      g (float[2,3] x) => (float[2,3] y) {
        a = Identity (x)
        b = Identity (a)
        c = Relu (b)
        y = Identity (c)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3] x) => (float[2,3] y) {
          y = Relu (x)
        }
        """)
  }

  @Test func inferenceDropoutAndSameTypeCast() throws {
    try assertRewrite(
      EliminateIdentity.self,
      """
      \(header)
      g (float[2,3] x) => (float[2,3] y) {
        d = Dropout (x)
        c = Cast <to = 1> (d)
        y = Sigmoid (c)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3] x) => (float[2,3] y) {
          y = Sigmoid (x)
        }
        """)
  }

  @Test func noOpShapeOpsAndNeutralArithmetic() throws {
    try assertRewrite(
      EliminateIdentity.self,
      """
      \(header)
      g (float[2,3] x) => (float[2,3] y) <int64[2] s = {2, 3}, float one = {1.0}, float[3] zero = {0.0, 0.0, 0.0}, int64[4] p = {0, 0, 0, 0}> {
        r = Reshape (x, s)
        t = Transpose <perm = [0, 1]> (r)
        m = Mul (t, one)
        a = Add (zero, m)
        q = Pad (a, p)
        y = Tanh (q)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3] x) => (float[2,3] y) {
          y = Tanh (x)
        }
        """)
  }

  @Test func graphOutputTakesOverTheNameOfItsSource() throws {
    try assertRewrite(
      EliminateIdentity.self,
      """
      \(header)
      g (float[2,3] x) => (float[2,3] y) {
        r = Relu (x)
        y = Identity (r)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3] x) => (float[2,3] y) {
          y = Relu (x)
        }
        """)
  }

  // MARK: Guards

  @Test func identityOfAGraphInputThatIsAnOutputStays() throws {
    try assertNoRewrite(
      EliminateIdentity.self,
      """
      \(header)
      g (float[2,3] x) => (float[2,3] y) {
        y = Identity (x)
      }
      """)
  }

  @Test func castToAnotherTypeStays() throws {
    try assertNoRewrite(
      EliminateIdentity.self,
      """
      \(header)
      g (float[2,3] x) => (int64[2,3] y) {
        y = Cast <to = 7> (x)
      }
      """)
  }

  @Test func multiplyByOneThatBroadcastsStays() throws {
    // x is [3]; the ones are [2,3]: the product is [2,3], not x.
    try assertNoRewrite(
      EliminateIdentity.self,
      """
      \(header)
      g (float[3] x) => (float[2,3] y) <float[2,3] ones = {1.0, 1.0, 1.0, 1.0, 1.0, 1.0}> {
        y = Mul (x, ones)
      }
      """)
  }

  @Test func reversingSliceStays() throws {
    try assertNoRewrite(
      EliminateIdentity.self,
      """
      \(header)
      g (float[4] x) => (float[4] y) <int64[1] starts = {-1}, int64[1] ends = {-5}, int64[1] axes = {0}, int64[1] steps = {-1}> {
        y = Slice (x, starts, ends, axes, steps)
      }
      """)
  }

  @Test func dropoutInTrainingModeStays() throws {
    try assertNoRewrite(
      EliminateIdentity.self,
      """
      \(header)
      g (float[2,3] x, bool t) => (float[2,3] y) <float r = {0.5}> {
        y = Dropout (x, r, t)
      }
      """)
  }

  @Test func dropoutWhoseMaskIsReadStays() throws {
    try assertNoRewrite(
      EliminateIdentity.self,
      """
      \(header)
      g (float[2,3] x) => (float[2,3] y, bool[2,3] m) {
        y, m = Dropout (x)
      }
      """)
  }

  @Test func nonIdentityTransposeStays() throws {
    try assertNoRewrite(
      EliminateIdentity.self,
      """
      \(header)
      g (float[3,3] x) => (float[3,3] y) {
        t = Transpose <perm = [1, 0]> (x)
        y = Relu (t)
      }
      """)
  }
}
