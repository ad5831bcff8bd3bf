import Graph
import GraphTesting
import Passes
import Testing

@Suite struct FoldConstantsTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  @Test func constantSubgraphBecomesAnInitializer() throws {
    try assertRewrite(
      FoldConstants.self,
      """
      \(header)
      g (float[2] x) => (float[2] y) <float[2] a = {1.0, 2.0}, float[2] b = {3.0, 0.5}, float c = {1.0}> {
        m = Mul (a, b)
        s = Sub (m, c)
        y = Add (x, s)
      }
      """,
      becomes: """
        \(header)
        g (float[2] x) => (float[2] y) <float[2] s = {2.0, 0.0}> {
          y = Add (x, s)
        }
        """)
  }

  @Test(arguments: [
    ("value = float[2] {1.5, -2.0}", "float[2] c = {1.5, -2.0}"),
    ("value_floats = [1.5, -2.0]", "float[2] c = {1.5, -2.0}"),
    ("value_float = 1.5", "float c = {1.5}"),
  ])
  func constantNodeBecomesAnInitializer(attribute: String, initializer: String) throws {
    try assertRewrite(
      FoldConstants.self,
      """
      \(header)
      g (float[2] x) => (float[2] y) {
        c = Constant <\(attribute)> ()
        y = Add (x, c)
      }
      """,
      becomes: """
        \(header)
        g (float[2] x) => (float[2] y) <\(initializer)> {
          y = Add (x, c)
        }
        """)
  }

  @Test func integerConstantNodeFeedsAFold() throws {
    try assertRewrite(
      FoldConstants.self,
      """
      \(header)
      g (float[2,3] x) => (float[3,2] y) {
        c = Constant <value_ints = [3, 2]> ()
        k = Constant <value_int = 2> ()
        s = Mul (c, k)
        h = Div (s, k)
        y = Reshape (x, h)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3] x) => (float[3,2] y) <int64[2] h = {3, 2}> {
          y = Reshape (x, h)
        }
        """)
  }

  @Test func castToFloat16KeepsItsType() throws {
    try assertRewrite(
      FoldConstants.self,
      """
      \(header)
      g (float[2] x) => (float[2] y) <float[2] w = {0.1, 3.0}> {
        h = Cast <to = 10> (w)
        e = CastLike (x, h)
        y = Cast <to = 1> (e)
      }
      """,
      becomes: """
        \(header)
        g (float[2] x) => (float[2] y) <float16[2] h = {11878, 16896}> {
          e = CastLike (x, h)
          y = Cast <to = 1> (e)
        }
        """)
  }

  @Test func multipleOutputsFold() throws {
    try assertRewrite(
      FoldConstants.self,
      """
      \(header)
      g (float[2] x) => (float[2] y) <float[4] w = {1.0, 2.0, 3.0, 4.0}, int64[2] sp = {2, 2}> {
        p, q = Split (w, sp)
        y = Sub (x, q)
        z = Neg (p)
      }
      """,
      becomes: """
        \(header)
        g (float[2] x) => (float[2] y) <float[2] q = {3.0, 4.0}> {
          y = Sub (x, q)
        }
        """)
  }

  @Test func growthGuardCanBeRaised() throws {
    try assertRewrite(
      FoldConstants.self, options: ["max-growth": "10000"],
      """
      \(header)
      g (float[32,32] x) => (float[32,32] y) <float one = {1.0}, int64[2] s = {32, 32}> {
        e = Expand (one, s)
        y = Add (x, e)
      }
      """,
      becomes: """
        \(header)
        g (float[32,32] x) => (float[32,32] y) <float[32,32] e = \(repeatedLiteral("1.0", 1024))> {
          y = Add (x, e)
        }
        """)
  }

  // MARK: Guards

  @Test(arguments: [
    "e = Expand (one, s)",
    "e = ConstantOfShape <value = float[1] {1.0}> (s)",
    "e = Tile (one4, s)",
  ])
  func growthGuardKeepsLargeResultsUnfolded(node: String) throws {
    try assertNoRewrite(
      FoldConstants.self,
      """
      \(header)
      g (float[32,32] x) => (float[32,32] y) <float one = {1.0}, float[1,1] one4 = {1.0}, int64[2] s = {32, 32}> {
        \(node)
        y = Add (x, e)
      }
      """)
  }

  @Test func randomOpsNeverFold() throws {
    try assertNoRewrite(
      FoldConstants.self,
      """
      \(header)
      g (float[2] x) => (float[2] y) <float[2] w = {1.0, 2.0}> {
        r = RandomUniformLike (w)
        y = Add (x, r)
      }
      """)
  }

  @Test func graphOutputStays() throws {
    try assertNoRewrite(
      FoldConstants.self,
      """
      \(header)
      g (float[2] x) => (float[2] y, float[2] z) <float[2] a = {1.0, 2.0}, float[2] b = {3.0, 4.0}> {
        y = Add (x, a)
        z = Mul (a, b)
      }
      """)
  }

  @Test func weightThatIsAGraphInputStays() throws {
    try assertNoRewrite(
      FoldConstants.self,
      """
      \(header)
      g (float[2] x, float[2] a) => (float[2] y) <float[2] a = {1.0, 2.0}, float[2] b = {3.0, 4.0}> {
        m = Mul (a, b)
        y = Add (x, m)
      }
      """)
  }

  @Test func opWithoutKernelStays() throws {
    try assertNoRewrite(
      FoldConstants.self,
      """
      \(header)
      g (float[2] x) => (float[2] y) <float[2] a = {1.0, 2.0}> {
        h = Hardmax (a)
        y = Add (x, h)
      }
      """)
  }
}

/// `{v, v, …}` with `count` elements.
func repeatedLiteral(_ v: String, _ count: Int) -> String {
  "{" + Array(repeating: v, count: count).joined(separator: ", ") + "}"
}
