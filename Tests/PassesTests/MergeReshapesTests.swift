import Graph
import GraphTesting
import Passes
import Testing

@Suite struct MergeReshapesTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  @Test func reshapeChainBecomesOneReshape() throws {
    try assertRewrite(
      MergeReshapes.self,
      """
      \(header)
      g (float[2,3,4] x) => (float[4,6] y) <int64[2] s1 = {6, 4}, int64[2] s2 = {4, -1}> {
        t = Reshape (x, s1)
        r = Reshape (t, s2)
        y = Relu (r)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3,4] x) => (float[4,6] y) <int64[2] s2 = {4, -1}> {
          r = Reshape (x, s2)
          y = Relu (r)
        }
        """)
  }

  @Test(arguments: [
    ("t = Flatten <axis = 1> (x)", ""),
    ("t = Squeeze (x, axes)", "int64[1] axes = {1}, "),
    ("t = Unsqueeze (x, axes)", "int64[1] axes = {0}, "),
  ])
  func shapeOpBeforeAReshapeGoes(inner: String, constants: String) throws {
    try assertRewrite(
      MergeReshapes.self,
      """
      \(header)
      g (float[2,1,6] x) => (float[3,4] y) <\(constants)int64[2] s = {3, 4}> {
        \(inner)
        y = Reshape (t, s)
      }
      """,
      becomes: """
        \(header)
        g (float[2,1,6] x) => (float[3,4] y) <int64[2] s = {3, 4}> {
          y = Reshape (x, s)
        }
        """)
  }

  @Test func zeroResolvedFromTheInnerShape() throws {
    // t is [6, 4]; s2's 0 copies t's 6, which x does not have at that position.
    try assertRewrite(
      MergeReshapes.self,
      """
      \(header)
      g (float[2,3,4] x) => (float[6,2,2] y) <int64[2] s1 = {6, 4}, int64[3] s2 = {0, 2, 2}> {
        t = Reshape (x, s1)
        y = Reshape (t, s2)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3,4] x) => (float[6,2,2] y) <int64[3] s2_1 = {6, 2, 2}> {
          y = Reshape (x, s2_1)
        }
        """)
  }

  @Test func zeroThatCopiesTheSameDimOfTheInputStays() throws {
    // s1's 0 copies x's batch dim N, so s2's 0 can copy it from x directly.
    try assertRewrite(
      MergeReshapes.self,
      """
      \(header)
      g (float[N,3,4] x) => (float[N,4,3] y) <int64[2] s1 = {0, -1}, int64[3] s2 = {0, 4, 3}> {
        t = Reshape (x, s1)
        y = Reshape (t, s2)
      }
      """,
      becomes: """
        \(header)
        g (float[N,3,4] x) => (float[N,4,3] y) <int64[3] s2 = {0, 4, 3}> {
          y = Reshape (x, s2)
        }
        """)
  }

  @Test func zeroResolvedFromInferredShapes() throws {
    try assertRewrite(
      MergeReshapes.self,
      """
      \(header)
      g (float[2,3,4] x) => (float[2,4,3] y) <int64[3] s = {0, 4, 3}> {
        t = Flatten <axis = 1> (x)
        y = Reshape (t, s)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3,4] x) => (float[2,4,3] y) <int64[3] s_1 = {2, 4, 3}> {
          y = Reshape (x, s_1)
        }
        """)
  }

  @Test func symbolicBatchCopiedThroughFlatten() throws {
    // t's dim 0 is x's dim 0 (both N), so the 0 keeps copying it.
    try assertRewrite(
      MergeReshapes.self,
      """
      \(header)
      g (float[N,3,4] x) => (float[N,4,3] y) <int64[3] s = {0, 4, 3}> {
        t = Flatten <axis = 1> (x)
        y = Reshape (t, s)
      }
      """,
      becomes: """
        \(header)
        g (float[N,3,4] x) => (float[N,4,3] y) <int64[3] s = {0, 4, 3}> {
          y = Reshape (x, s)
        }
        """)
  }

  // MARK: Guards

  @Test func innerWithASecondUseStays() throws {
    try assertNoRewrite(
      MergeReshapes.self,
      """
      \(header)
      g (float[2,3,4] x) => (float[4,6] y, float[6,4] z) <int64[2] s1 = {6, 4}, int64[2] s2 = {4, 6}> {
        t = Reshape (x, s1)
        y = Reshape (t, s2)
        z = Relu (t)
      }
      """)
  }

  @Test func innerThatIsAGraphOutputStays() throws {
    try assertNoRewrite(
      MergeReshapes.self,
      """
      \(header)
      g (float[2,3,4] x) => (float[4,6] y, float[6,4] t) <int64[2] s1 = {6, 4}, int64[2] s2 = {4, 6}> {
        t = Reshape (x, s1)
        y = Reshape (t, s2)
      }
      """)
  }

  @Test func overridableShapeStays() throws {
    // s2 is a graph input with a default: a caller may pass another shape, with 0s in it.
    try assertNoRewrite(
      MergeReshapes.self,
      """
      \(header)
      g (float[2,3,4] x, int64[2] s2) => (float[4,6] y) <int64[2] s1 = {6, 4}, int64[2] s2 = {4, 6}> {
        t = Reshape (x, s1)
        y = Reshape (t, s2)
      }
      """)
  }

  @Test func zeroThatCannotBeResolvedStays() throws {
    // t is [3N, 4]: s2's 0 copies 3N, which x has nowhere.
    try assertNoRewrite(
      MergeReshapes.self,
      """
      \(header)
      g (float[N,3,4] x) => (float[M,2,2] y) <int64[2] s1 = {-1, 4}, int64[3] s2 = {0, 2, 2}> {
        t = Reshape (x, s1)
        y = Reshape (t, s2)
      }
      """)
  }
}
