import Graph
import GraphTesting
import Passes
import Testing

@Suite struct MergeSlicesTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  @Test func slicesOnTwoAxesBecomeOne() throws {
    try assertRewrite(
      MergeSlices.self,
      """
      \(header)
      g (float[4,6,8] x) => (float[2,6,3] y)
        <int64[1] s1 = {1}, int64[1] e1 = {3}, int64[1] a1 = {0}, int64[1] s2 = {1}, int64[1] e2 = {-1}, int64[1] a2 = {-1}, int64[1] k2 = {2}> {
        t = Slice (x, s1, e1, a1)
        y = Slice (t, s2, e2, a2, k2)
      }
      """,
      becomes: """
        \(header)
        g (float[4,6,8] x) => (float[2,6,3] y)
          <int64[2] y_starts = {1, 1}, int64[2] y_ends = {3, -1}, int64[2] y_axes = {0, 2}, int64[2] y_steps = {1, 2}> {
          y = Slice (x, y_starts, y_ends, y_axes, y_steps)
        }
        """)
  }

  @Test func sameAxisStays() throws {
    try assertNoRewrite(
      MergeSlices.self,
      """
      \(header)
      g (float[8] x) => (float[2] y) <int64[1] s1 = {1}, int64[1] e1 = {7}, int64[1] s2 = {1}, int64[1] e2 = {3}> {
        t = Slice (x, s1, e1)
        y = Slice (t, s2, e2)
      }
      """)
  }

  @Test func innerSliceReadTwiceStays() throws {
    try assertNoRewrite(
      MergeSlices.self,
      """
      \(header)
      g (float[4,6] x) => (float[2,2] y, float[2,6] t)
        <int64[1] s1 = {1}, int64[1] e1 = {3}, int64[1] a1 = {0}, int64[1] s2 = {1}, int64[1] e2 = {3}, int64[1] a2 = {1}> {
        t = Slice (x, s1, e1, a1)
        y = Slice (t, s2, e2, a2)
      }
      """)
  }

  @Test func nonConstantStartsStay() throws {
    try assertNoRewrite(
      MergeSlices.self,
      """
      \(header)
      g (float[4,6] x, int64[1] s1) => (float[?,2] y)
        <int64[1] e1 = {3}, int64[1] a1 = {0}, int64[1] s2 = {1}, int64[1] e2 = {3}, int64[1] a2 = {1}> {
        t = Slice (x, s1, e1, a1)
        y = Slice (t, s2, e2, a2)
      }
      """)
  }
}
