import Graph
import GraphTesting
import Passes
import Testing

@Suite struct FoldAffineTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  @Test func convMulAddChain() throws {
    // BatchNorm as some exporters write it: Mul by [1,C,1,1], then Add of [C,1,1].
    try assertRewrite(
      FoldAffine.self,
      """
      \(header)
      g (float[1,2,4,4] x) => (float[1,3,4,4] y) <float[3,2,1,1] w = \(floatLiteral(6)), float[3] b = {1.0, -1.0, 0.5}, float[1,3,1,1] a = {0.5, -2.0, 3.0}, float[3,1,1] t = {0.25, 0.5, -1.0}> {
        c = Conv (x, w, b)
        m = Mul (a, c)
        y = Add (m, t)
      }
      """,
      becomes: """
        \(header)
        g (float[1,2,4,4] x) => (float[1,3,4,4] y) <
          float[3,2,1,1] w_folded = {-0.3055, -0.2095, 1.682, -0.934, 2.5770001, -2.025},
          float[3] b_folded_1 = {0.75, 2.5, 0.5}
        > {
          y = Conv (x, w_folded, b_folded_1)
        }
        """)
  }

  @Test func constantMinusGemm() throws {
    try assertRewrite(
      FoldAffine.self,
      """
      \(header)
      g (float[2,4] x) => (float[2,3] y) <float[3,4] w = \(floatLiteral(12)), float[3] b = {1.0, -1.0, 0.5}, float[3] t = {0.25, 0.5, -1.0}> {
        c = Gemm <transB = 1, alpha = 2.0> (x, w, b)
        y = Sub (t, c)
      }
      """,
      becomes: """
        \(header)
        g (float[2,4] x) => (float[2,3] y) <
          float[3,4] w_folded = {1.222, 0.838, 1.682, -0.934, -1.718, 1.35, 0.264, 1.628, 1.236, 0.048, 0.722, 1.502},
          float[3] b_folded = {-0.75, 1.5, -1.5}
        > {
          y = Gemm <transB: int = 1> (x, w_folded, b_folded)
        }
        """)
  }

  @Test func convTransposeDividedByScalar() throws {
    try assertRewrite(
      FoldAffine.self,
      """
      \(header)
      g (float[1,2,3,3] x) => (float[1,2,4,4] y) <float[2,1,2,2] w = \(floatLiteral(8)), float d = {4.0}> {
        c = ConvTranspose <group = 2> (x, w)
        y = Div (c, d)
      }
      """,
      becomes: """
        \(header)
        g (float[1,2,3,3] x) => (float[1,2,4,4] y) <
          float[2,1,2,2] w_folded = {-0.15275, -0.10475, -0.21025, 0.11675, 0.21475, -0.16875, -0.033, -0.2035}
        > {
          y = ConvTranspose <group: int = 2> (x, w_folded)
        }
        """)
  }

  @Test func matMulAddMulSubOnTheLastAxis() throws {
    try assertRewrite(
      FoldAffine.self,
      """
      \(header)
      g (float[2,5,4] x) => (float[2,5,3] y) <float[4,3] w = \(floatLiteral(12)), float[3] b = {1.0, -1.0, 0.5}, float[1,1,3] a = {0.5, -2.0, 3.0}, float[3] t = {0.25, 0.5, -1.0}> {
        mm = MatMul (x, w)
        c = Add (mm, b)
        m = Mul (c, a)
        y = Sub (m, t)
      }
      """,
      becomes: """
        \(header)
        g (float[2,5,4] x) => (float[2,5,3] y) <
          float[4,3] w_folded = {-0.3055, 0.838, -2.523, 0.2335, -1.718, -2.025, -0.066, 1.628, -1.8539999, -0.012, 0.722, -2.253},
          float[3] b_folded_1 = {0.25, 1.5, 2.5}
        > {
          mm = MatMul (x, w_folded)
          y = Add (mm, b_folded_1)
        }
        """)
  }

  @Test func matMulTimesScalar() throws {
    try assertRewrite(
      FoldAffine.self,
      """
      \(header)
      g (float[2,4] x) => (float[2,3] y) <float[4,3] w = \(floatLiteral(12)), float[1] a = {0.125}> {
        c = MatMul (x, w)
        y = Mul (c, a)
      }
      """,
      becomes: """
        \(header)
        g (float[2,4] x) => (float[2,3] y) <
          float[4,3] w_folded = {-0.076375, -0.052375, -0.105125, 0.058375, 0.107375, -0.084375, -0.0165, -0.10175, -0.07725, -0.003, -0.045125, -0.093875}
        > {
          y = MatMul (x, w_folded)
        }
        """)
  }

  // MARK: Guards

  static let guards: [(String, String)] = [
    ("a constant varying along W", """
      g (float[1,2,4,4] x) => (float[1,3,4,4] y) <float[3,2,1,1] w = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, float[1,1,1,4] a = {1.0, 2.0, 3.0, 4.0}> {
        c = Conv (x, w)
        y = Mul (c, a)
      }
      """),
    ("a [C] constant on a conv (it broadcasts along W)", """
      g (float[1,2,3,3] x) => (float[1,3,3,3] y) <float[3,2,1,1] w = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, float[3] a = {1.0, 2.0, 3.0}> {
        c = Conv (x, w)
        y = Mul (c, a)
      }
      """),
    ("a constant with more axes than the output", """
      g (float[1,2,4,4] x) => (float[1,1,3,4,4] y) <float[3,2,1,1] w = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, float[1,1,3,1,1] a = {1.0, 2.0, 3.0}> {
        c = Conv (x, w)
        y = Mul (c, a)
      }
      """),
    ("division by a constant with a zero", """
      g (float[1,2,4,4] x) => (float[1,3,4,4] y) <float[3,2,1,1] w = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, float[3,1,1] a = {1.0, 0.0, 3.0}> {
        c = Conv (x, w)
        y = Div (c, a)
      }
      """),
    ("a constant divided by the conv", """
      g (float[1,2,4,4] x) => (float[1,3,4,4] y) <float[3,2,1,1] w = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, float[3,1,1] a = {1.0, 2.0, 3.0}> {
        c = Conv (x, w)
        y = Div (a, c)
      }
      """),
    ("the bias Add of a MatMul", """
      g (float[2,4] x) => (float[2,3] y) <float[4,3] w = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0}, float[3] b = {1.0, 2.0, 3.0}> {
        c = MatMul (x, w)
        y = Add (c, b)
      }
      """),
    ("conv output used twice", """
      g (float[1,2,4,4] x) => (float[1,3,4,4] y, float[1,3,4,4] z) <float[3,2,1,1] w = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, float[3,1,1] a = {1.0, 2.0, 3.0}> {
        c = Conv (x, w)
        y = Mul (c, a)
        z = Relu (c)
      }
      """),
    ("conv output a graph output", """
      g (float[1,2,4,4] x) => (float[1,3,4,4] y, float[1,3,4,4] c) <float[3,2,1,1] w = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, float[3,1,1] a = {1.0, 2.0, 3.0}> {
        c = Conv (x, w)
        y = Mul (c, a)
      }
      """),
    ("weight a graph input", """
      g (float[1,2,4,4] x, float[3,2,1,1] w) => (float[1,3,4,4] y) <float[3,1,1] a = {1.0, 2.0, 3.0}> {
        c = Conv (x, w)
        y = Mul (c, a)
      }
      """),
    ("constant a graph input", """
      g (float[1,2,4,4] x, float[3,1,1] a) => (float[1,3,4,4] y) <float[3,2,1,1] w = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}> {
        c = Conv (x, w)
        y = Mul (c, a)
      }
      """),
  ]

  @Test(arguments: guards)
  func declines(_ name: String, _ body: String) throws {
    try assertNoRewrite(FoldAffine.self, "\(header)\n\(body)")
  }
}
