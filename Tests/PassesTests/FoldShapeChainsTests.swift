import Graph
import GraphTesting
import Passes
import Testing

@Suite struct FoldShapeChainsTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  @Test func staticShapeChainFoldsCompletely() throws {
    try assertRewrite(
      FoldShapeChains.self,
      """
      \(header)
      g (float[2,3,4] x) => (float[2,12] y) <int64 zero = {0}, int64[1] axes = {0}, int64[1] rest = {-1}> {
        s = Shape (x)
        n = Gather <axis = 0> (s, zero)
        u = Unsqueeze (n, axes)
        t = Concat <axis = 0> (u, rest)
        y = Reshape (x, t)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3,4] x) => (float[2,12] y) <int64[2] t = {2, -1}> {
          y = Reshape (x, t)
        }
        """)
  }

  @Test func shapeStartAndEndAndSizeAreRespected() throws {
    try assertRewrite(
      FoldShapeChains.self,
      """
      \(header)
      g (float[2,3,4] x) => (float[6,4] y) <int64[1] rest = {-1}> {
        s = Shape <start = -1> (x)
        t = Concat <axis = 0> (rest, s)
        y = Reshape (x, t)
        n = Size (x)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3,4] x) => (float[6,4] y) <int64[2] t = {-1, 4}> {
          y = Reshape (x, t)
        }
        """)
  }

  /// x.view(x.size(0), x.size(1), -1) with a symbolic batch: the batch becomes 0 ("copy").
  @Test func symbolicBatchBecomesCopyDim() throws {
    try assertRewrite(
      FoldShapeChains.self,
      """
      \(header)
      g (float[N,3,4] x) => (float[N,3,4] y) <int64 zero = {0}, int64 one = {1}, int64[1] axes = {0}, int64[1] rest = {-1}> {
        s = Shape (x)
        n = Gather <axis = 0> (s, zero)
        c = Gather <axis = 0> (s, one)
        u = Unsqueeze (n, axes)
        v = Unsqueeze (c, axes)
        t = Concat <axis = 0> (u, v, rest)
        y = Reshape (x, t)
      }
      """,
      becomes: """
        \(header)
        g (float[N,3,4] x) => (float[N,3,4] y) <int64[3] t_1 = {0, 3, -1}> {
          y = Reshape (x, t_1)
        }
        """)
  }

  /// The batch moves to another position: it becomes −1, every other entry being known.
  @Test func symbolicDimElsewhereBecomesInferred() throws {
    try assertRewrite(
      FoldShapeChains.self,
      """
      \(header)
      g (float[N,6] x) => (float[3,N,2] y) <int64[1] first = {0}, int64[1] axes = {0}, int64[1] three = {3}, int64[1] two = {2}> {
        s = Shape (x)
        n = Gather <axis = 0> (s, first)
        t = Concat <axis = 0> (three, n, two)
        y = Reshape (x, t)
      }
      """,
      becomes: """
        \(header)
        g (float[N,6] x) => (float[3,N,2] y) <int64[3] t_1 = {3, -1, 2}> {
          y = Reshape (x, t_1)
        }
        """)
  }

  @Test func sliceOfStaticDimsFolds() throws {
    try assertRewrite(
      FoldShapeChains.self,
      """
      \(header)
      g (float[N,3,4] x) => (float[N,12] y) <int64[1] b = {1}, int64[1] e = {3}, int64[1] axes = {0}> {
        s = Shape (x)
        d = Slice (s, b, e)
        p = ReduceProd <keepdims = 1> (d)
        n = Slice (s, axes, b)
        t = Concat <axis = 0> (n, p)
        y = Reshape (x, t)
      }
      """,
      becomes: """
        \(header)
        g (float[N,3,4] x) => (float[N,12] y) <int64[2] t_1 = {0, 12}> {
          y = Reshape (x, t_1)
        }
        """)
  }

  // MARK: Guards

  /// A reshape that swaps two symbolic dims: neither is at its own position, and −1 covers one only.
  @Test func twoUnresolvedSymbolicDimsStay() throws {
    try assertNoRewrite(
      FoldShapeChains.self,
      """
      \(header)
      g (float[N,M] x) => (float[M,N] y) <int64 zero = {0}, int64 one = {1}, int64[1] axes = {0}> {
        s = Shape (x)
        n = Gather <axis = 0> (s, zero)
        m = Gather <axis = 0> (s, one)
        u = Unsqueeze (n, axes)
        v = Unsqueeze (m, axes)
        t = Concat <axis = 0> (v, u)
        y = Reshape (x, t)
      }
      """)
  }

  @Test func inferredDimNextToAConstantMinusOneStays() throws {
    try assertNoRewrite(
      FoldShapeChains.self,
      """
      \(header)
      g (float[N,6] x) => (float[6,N] y) <int64[1] first = {0}, int64[1] rest = {-1}> {
        s = Shape (x)
        n = Gather <axis = 0> (s, first)
        t = Concat <axis = 0> (rest, n)
        y = Reshape (x, t)
      }
      """)
  }

  @Test func shapeOfADynamicDimStays() throws {
    try assertNoRewrite(
      FoldShapeChains.self,
      """
      \(header)
      g (float[N,3] x) => (float[N,3] y) <int64 zero = {0}> {
        s = Shape (x)
        n = Gather <axis = 0> (s, zero)
        f = Cast <to = 1> (n)
        y = Mul (x, f)
      }
      """)
  }

  @Test func shapeThatIsAGraphOutputStays() throws {
    try assertNoRewrite(
      FoldShapeChains.self,
      """
      \(header)
      g (float[2,3] x) => (int64[2] s) {
        s = Shape (x)
      }
      """)
  }
}
