import Graph
import GraphTesting
import Passes
import Testing

@Suite struct MergeTransposesTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  @Test func layoutRoundTripAroundAnOpVanishes() throws {
    // NCHW → NHWC → NCHW: [0,2,3,1] then [0,3,1,2] composes to the identity.
    try assertRewrite(
      MergeTransposes.self,
      """
      \(header)
      g (float[1,2,3,4] x) => (float[1,2,3,4] y) {
        t = Transpose <perm = [0, 2, 3, 1]> (x)
        u = Transpose <perm = [0, 3, 1, 2]> (t)
        y = Relu (u)
      }
      """,
      becomes: """
        \(header)
        g (float[1,2,3,4] x) => (float[1,2,3,4] y) {
          y = Relu (x)
        }
        """)
  }

  @Test func pairComposesToOnePermutation() throws {
    // q[i] = p1[p2[i]] = [1, 2, 0]: x [2,3,4] → t [3,2,4] → y [3,4,2].
    try assertRewrite(
      MergeTransposes.self,
      """
      \(header)
      g (float[2,3,4] x) => (float[3,4,2] y) {
        t = Transpose <perm = [1, 0, 2]> (x)
        y = Transpose <perm = [0, 2, 1]> (t)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3,4] x) => (float[3,4,2] y) {
          y = Transpose <perm = [1, 2, 0]> (x)
        }
        """)
  }

  @Test(arguments: [
    // A missing perm reverses the axes; the other perm gives the rank.
    ("t = Transpose (x)", "y = Transpose <perm = [1, 0, 2]> (t)", "[1, 2, 0]"),
    ("t = Transpose <perm = [1, 0, 2]> (x)", "y = Transpose (t)", "[2, 0, 1]"),
  ])
  func missingPermIsTheReversal(inner: String, outer: String, composed: String) throws {
    let shape = composed == "[1, 2, 0]" ? "3,4,2" : "4,2,3"
    try assertRewrite(
      MergeTransposes.self,
      """
      \(header)
      g (float[2,3,4] x) => (float[\(shape)] y) {
        \(inner)
        \(outer)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3,4] x) => (float[\(shape)] y) {
          y = Transpose <perm = \(composed)> (x)
        }
        """)
  }

  @Test func twoReversalsCancelWithoutARank() throws {
    try assertRewrite(
      MergeTransposes.self,
      """
      \(header)
      g (float[2,3,4] x) => (float[2,3,4] y) {
        t = Transpose (x)
        u = Transpose (t)
        y = Sigmoid (u)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3,4] x) => (float[2,3,4] y) {
          y = Sigmoid (x)
        }
        """)
  }

  @Test func tripleCollapses() throws {
    try assertRewrite(
      MergeTransposes.self,
      """
      \(header)
      g (float[2,3,4] x) => (float[4,2,3] y) {
        a = Transpose <perm = [1, 0, 2]> (x)
        b = Transpose <perm = [0, 2, 1]> (a)
        y = Transpose <perm = [1, 2, 0]> (b)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3,4] x) => (float[4,2,3] y) {
          y = Transpose <perm = [2, 0, 1]> (x)
        }
        """)
  }

  @Test func identityPairWhoseMiddleIsAnOutputLeavesTheInner() throws {
    // t must stay (the caller sees it), but the second Transpose still goes.
    try assertRewrite(
      MergeTransposes.self,
      """
      \(header)
      g (float[2,3] x) => (float[2,3] y, float[3,2] t) {
        t = Transpose <perm = [1, 0]> (x)
        u = Transpose <perm = [1, 0]> (t)
        y = Relu (u)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3] x) => (float[2,3] y, float[3,2] t) {
          t = Transpose <perm = [1, 0]> (x)
          y = Relu (x)
        }
        """)
  }

  @Test func identityPairFromInputToOutputBecomesAnIdentity() throws {
    // y must keep its name and x (a graph input) cannot take it.
    try assertRewrite(
      MergeTransposes.self,
      """
      \(header)
      g (float[2,3] x) => (float[2,3] y) {
        t = Transpose <perm = [1, 0]> (x)
        y = Transpose <perm = [1, 0]> (t)
      }
      """,
      becomes: """
        \(header)
        g (float[2,3] x) => (float[2,3] y) {
          y = Identity (x)
        }
        """)
  }

  // MARK: Guards

  @Test func nonIdentityPairWhoseMiddleIsAnOutputStays() throws {
    try assertNoRewrite(
      MergeTransposes.self,
      """
      \(header)
      g (float[2,3,4] x) => (float[3,4,2] y, float[3,2,4] t) {
        t = Transpose <perm = [1, 0, 2]> (x)
        y = Transpose <perm = [0, 2, 1]> (t)
      }
      """)
  }

  @Test func nonIdentityPairWhoseMiddleHasASecondUseStays() throws {
    try assertNoRewrite(
      MergeTransposes.self,
      """
      \(header)
      g (float[2,3,4] x) => (float[3,4,2] y, float[3,2,4] z) {
        t = Transpose <perm = [1, 0, 2]> (x)
        y = Transpose <perm = [0, 2, 1]> (t)
        z = Relu (t)
      }
      """)
  }

  @Test func permutationsOfDifferentRanksStay() throws {
    try assertNoRewrite(
      MergeTransposes.self,
      """
      \(header)
      g (float[2,3,4] x) => (float[4,3,2] y) {
        t = Transpose <perm = [1, 0, 2]> (x)
        y = Transpose <perm = [1, 0]> (t)
      }
      """)
  }
}
