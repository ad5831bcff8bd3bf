import Graph
import GraphTesting
import Passes
import Testing

@Suite struct FoldBatchNormTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"
  /// γ, β, μ, σ² for three channels, ε not the default.
  let bn3 = "float[3] s = {0.5, -1.5, 2.0}, float[3] bb = {0.1, 0.2, -0.3}, float[3] m = {0.25, -0.5, 1.0}, float[3] v = {0.5, 1.0, 2.0}"

  @Test func convWithBias() throws {
    try assertRewrite(
      FoldBatchNorm.self,
      """
      \(header)
      g (float[1,2,4,4] x) => (float[1,3,4,4] y) <float[3,2,1,1] w = \(floatLiteral(6)), float[3] b = {1.0, -1.0, 0.5}, \(bn3)> {
        c = Conv (x, w, b)
        y = BatchNormalization <epsilon = 0.001> (c, s, bb, m, v)
      }
      """,
      becomes: """
        \(header)
        g (float[1,2,4,4] x) => (float[1,3,4,4] y) <
          float[3,2,1,1] w_folded = {-0.43161085, -0.2959819, 1.2608697, -0.70015, 1.2145059, -0.9543556},
          float[3] b_folded = {0.62980056, 0.9496253, -1.0069301}
        > {
          y = Conv (x, w_folded, b_folded)
        }
        """)
  }

  @Test func convWithoutBiasGetsOne() throws {
    try assertRewrite(
      FoldBatchNorm.self,
      """
      \(header)
      g (float[1,2,4,4] x) => (float[1,3,2,2] y) <float[3,2,3,3] w = \(floatLiteral(54)), \(bn3)> {
        c = Conv <strides = [2, 2], pads = [1, 1, 0, 0]> (x, w)
        y = BatchNormalization (c, s, bb, m, v)
      }
      """,
      becomes: """
        \(header)
        g (float[1,2,4,4] x) => (float[1,3,2,2] y) <
          float[3,2,3,3] w_folded = ["location": "#digest:2cf1dcd105624da8"],
          float[3] y_bias = {-0.076774925, -0.54999626, -1.71421}
        > {
          y = Conv <strides: ints = [2, 2], pads: ints = [1, 1, 0, 0]> (x, w_folded, y_bias)
        }
        """)
  }

  @Test func groupedConv() throws {
    // 6 → 6 channels in 3 groups: each output channel has its own scale.
    try assertRewrite(
      FoldBatchNorm.self,
      """
      \(header)
      g (float[1,6,3,3] x) => (float[1,6,3,3] y) <float[6,2,1,1] w = \(floatLiteral(12)), float[6] s = {0.5, -1.5, 2.0, 1.0, 0.25, 3.0}, float[6] bb = {0.1, 0.2, -0.3, 0.0, 1.0, -1.0}, float[6] m = {0.25, -0.5, 1.0, 0.0, 2.0, -2.0}, float[6] v = {0.5, 1.0, 2.0, 0.1, 4.0, 1.0}> {
        c = Conv <group = 3> (x, w)
        y = BatchNormalization (c, s, bb, m, v)
      }
      """,
      becomes: """
        \(header)
        g (float[1,6,3,3] x) => (float[1,6,3,3] y) <
          float[6,2,1,1] w_folded = {-0.43203792, -0.29627478, 1.2614937, -0.7004965, 1.2148064, -0.9545918, -0.41739976, -2.5739653, -0.0772499, -0.0029999963, -1.0829946, -2.2529888},
          float[6] y_bias = {-0.076774925, -0.54999626, -1.71421, 0.0, 0.7500003, 4.99997}
        > {
          y = Conv <group: int = 3> (x, w_folded, y_bias)
        }
        """)
  }

  @Test func depthwiseConv() throws {
    try assertRewrite(
      FoldBatchNorm.self,
      """
      \(header)
      g (float[1,3,4,4] x) => (float[1,3,4,4] y) <float[3,1,3,3] w = \(floatLiteral(27)), float[3] b = {1.0, 2.0, 3.0}, \(bn3)> {
        c = Conv <group = 3, pads = [1, 1, 1, 1], dilations = [1, 1]> (x, w, b)
        y = BatchNormalization (c, s, bb, m, v)
      }
      """,
      becomes: """
        \(header)
        g (float[1,3,4,4] x) => (float[1,3,4,4] y) <
          float[3,1,3,3] w_folded = ["location": "#digest:ec1fb3991c3e3603"],
          float[3] b_folded = {0.6303248, -3.5499814, 2.52842}
        > {
          y = Conv <group: int = 3, pads: ints = [1, 1, 1, 1], dilations: ints = [1, 1]> (x, w_folded, b_folded)
        }
        """)
  }

  @Test func convTransposeWithGroups() throws {
    // W is [C_in = 4, C_out/g = 3, 2, 2] in 2 groups: 6 output channels.
    try assertRewrite(
      FoldBatchNorm.self,
      """
      \(header)
      g (float[1,4,3,3] x) => (float[1,6,6,6] y) <float[4,3,2,2] w = \(floatLiteral(48)), float[6] s = {0.5, -1.5, 2.0, 1.0, 0.25, 3.0}, float[6] bb = {0.1, 0.2, -0.3, 0.0, 1.0, -1.0}, float[6] m = {0.25, -0.5, 1.0, 0.0, 2.0, -2.0}, float[6] v = {0.5, 1.0, 2.0, 0.1, 4.0, 1.0}> {
        c = ConvTranspose <group = 2, strides = [2, 2]> (x, w)
        y = BatchNormalization (c, s, bb, m, v)
      }
      """,
      becomes: """
        \(header)
        g (float[1,4,3,3] x) => (float[1,6,6,6] y) <
          float[4,3,2,2] w_folded = ["location": "#digest:cbaa9a46efbf053b"],
          float[6] y_bias = {-0.076774925, -0.54999626, -1.71421, 0.0, 0.7500003, 4.99997}
        > {
          y = ConvTranspose <group: int = 2, strides: ints = [2, 2]> (x, w_folded, y_bias)
        }
        """)
  }

  @Test func gemmTransB0() throws {
    try assertRewrite(
      FoldBatchNorm.self,
      """
      \(header)
      g (float[2,4] x) => (float[2,3] y) <float[4,3] w = \(floatLiteral(12)), float[3] b = {1.0, -1.0, 0.5}, \(bn3)> {
        c = Gemm <alpha = 0.5, beta = 2.0> (x, w, b)
        y = BatchNormalization (c, s, bb, m, v)
      }
      """,
      becomes: """
        \(header)
        g (float[2,4] x) => (float[2,3] y) <
          float[4,3] w_folded = {-0.21601896, 0.31424844, -0.5946753, 0.16510779, -0.6442468, -0.4772959, -0.04666858, 0.61049694, -0.4369909, -0.008485196, 0.27074865, -0.53103584},
          float[3] b_folded = {1.3374245, 2.4499888, -0.3}
        > {
          y = Gemm (x, w_folded, b_folded)
        }
        """)
  }

  @Test func gemmTransB1WithScalarC() throws {
    try assertRewrite(
      FoldBatchNorm.self,
      """
      \(header)
      g (float[2,4] x) => (float[2,3] y) <float[3,4] w = \(floatLiteral(12)), float b = {0.75}, \(bn3)> {
        c = Gemm <transB = 1, alpha = 1.5, beta = -1.0> (x, w, b)
        y = BatchNormalization (c, s, bb, m, v)
      }
      """,
      becomes: """
        \(header)
        g (float[2,4] x) => (float[2,3] y) <
          float[3,4] w_folded = {-0.64805686, -0.44441217, -0.8920063, 0.49532336, -1.9327404, 1.5187424, 0.2969985, 1.8314909, -1.3109727, -0.05091156, -0.76579475, -1.5931076},
          float[3] b_folded = {-0.6070997, 0.57499814, -2.7748675}
        > {
          y = Gemm <transB: int = 1> (x, w_folded, b_folded)
        }
        """)
  }

  @Test func gemmWithoutC() throws {
    try assertRewrite(
      FoldBatchNorm.self,
      """
      \(header)
      g (float[2,4] x) => (float[2,3] y) <float[3,4] w = \(floatLiteral(12)), \(bn3)> {
        c = Gemm <transB = 1> (x, w)
        y = BatchNormalization (c, s, bb, m, v)
      }
      """,
      becomes: """
        \(header)
        g (float[2,4] x) => (float[2,3] y) <
          float[3,4] w_folded = {-0.43203792, -0.29627478, -0.5946709, 0.33021557, -1.2884936, 1.0124949, 0.19799902, 1.2209939, -0.8739818, -0.03394104, -0.5105298, -1.0620717},
          float[3] y_bias = {-0.076774925, -0.54999626, -1.71421}
        > {
          y = Gemm <transB: int = 1> (x, w_folded, y_bias)
        }
        """)
  }

  @Test func matMulAddBatchNorm() throws {
    try assertRewrite(
      FoldBatchNorm.self,
      """
      \(header)
      g (float[2,4] x) => (float[2,3] y) <float[4,3] w = \(floatLiteral(12)), float[3] b = {1.0, -1.0, 0.5}, \(bn3)> {
        mm = MatMul (x, w)
        c = Add (b, mm)
        y = BatchNormalization (c, s, bb, m, v)
      }
      """,
      becomes: """
        \(header)
        g (float[2,4] x) => (float[2,3] y) <
          float[4,3] w_folded = {-0.43203792, 0.6284969, -1.1893506, 0.33021557, -1.2884936, -0.9545918, -0.09333716, 1.2209939, -0.8739818, -0.016970392, 0.5414973, -1.0620717},
          float[3] b_folded = {0.6303248, 0.94999623, -1.007105}
        > {
          mm = MatMul (x, w_folded)
          y = Add (b_folded, mm)
        }
        """)
  }

  @Test func matMulBatchNormGetsAnAdd() throws {
    try assertRewrite(
      FoldBatchNorm.self,
      """
      \(header)
      g (float[2,4] x) => (float[2,3] y) <float[4,3] w = \(floatLiteral(12)), \(bn3)> {
        c = MatMul (x, w)
        y = BatchNormalization (c, s, bb, m, v)
      }
      """,
      becomes: """
        \(header)
        g (float[2,4] x) => (float[2,3] y) <
          float[4,3] w_folded = {-0.43203792, 0.6284969, -1.1893506, 0.33021557, -1.2884936, -0.9545918, -0.09333716, 1.2209939, -0.8739818, -0.016970392, 0.5414973, -1.0620717},
          float[3] y_bias = {-0.076774925, -0.54999626, -1.71421}
        > {
          c = MatMul (x, w_folded)
          [y_add] y = Add (c, y_bias)
        }
        """)
  }

  @Test func batchNormBeforeUnpaddedConv() throws {
    try assertRewrite(
      FoldBatchNorm.self,
      """
      \(header)
      g (float[1,3,4,4] x) => (float[1,2,3,3] y) <float[2,3,2,2] w = \(floatLiteral(24)), float[2] b = {1.0, -1.0}, \(bn3)> {
        n = BatchNormalization (x, s, bb, m, v)
        y = Conv <pads = [0, 0, 0, 0]> (n, w, b)
      }
      """,
      becomes: """
        \(header)
        g (float[1,3,4,4] x) => (float[1,2,3,3] y) <
          float[2,3,2,2] w_folded = ["location": "#digest:7ec837fa65a21919"],
          float[2] b_folded = {4.5336137, -2.1583393}
        > {
          y = Conv <pads: ints = [0, 0, 0, 0]> (x, w_folded, b_folded)
        }
        """)
  }

  @Test func loneBatchNormBecomesMulAdd() throws {
    try assertRewrite(
      FoldBatchNorm.self, options: ["lone": "true"],
      """
      \(header)
      g (float[1,3,2,2] x) => (float[1,3,2,2] y) <\(bn3)> {
        r = Relu (x)
        y = BatchNormalization (r, s, bb, m, v)
      }
      """,
      becomes: """
        \(header)
        g (float[1,3,2,2] x) => (float[1,3,2,2] y) <
          float[3,1,1] y_scale = {0.70709974, -1.4999925, 1.4142101},
          float[3,1,1] y_shift = {-0.076774925, -0.54999626, -1.71421}
        > {
          r = Relu (x)
          [y_mul] y_mul = Mul (r, y_scale)
          [y_add] y = Add (y_mul, y_shift)
        }
        """)
  }

  @Test func chainOfTwoBatchNorms() throws {
    try assertRewrite(
      FoldBatchNorm.self,
      """
      \(header)
      g (float[1,2,4,4] x) => (float[1,3,4,4] y) <float[3,2,1,1] w = \(floatLiteral(6)), \(bn3)> {
        c = Conv (x, w)
        n = BatchNormalization (c, s, bb, m, v)
        y = BatchNormalization (n, s, bb, m, v)
      }
      """,
      becomes: """
        \(header)
        g (float[1,2,4,4] x) => (float[1,3,4,4] y) <
          float[3,2,1,1] w_folded_1 = {-0.3054939, -0.20949581, -1.8922311, 1.0507395, 1.7179915, -1.3499933},
          float[3] n_bias_folded = {-0.13106245, 0.27499402, -4.138463}
        > {
          y = Conv (x, w_folded_1, n_bias_folded)
        }
        """)
  }

  // MARK: Guards

  static let guards: [(String, String)] = [
    ("conv output used twice", """
      g (float[1,2,4,4] x) => (float[1,3,4,4] y, float[1,3,4,4] z) <float[3,2,1,1] w = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, BN> {
        c = Conv (x, w)
        y = BatchNormalization (c, s, bb, m, v)
        z = Relu (c)
      }
      """),
    ("conv output a graph output", """
      g (float[1,2,4,4] x) => (float[1,3,4,4] y, float[1,3,4,4] c) <float[3,2,1,1] w = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, BN> {
        c = Conv (x, w)
        y = BatchNormalization (c, s, bb, m, v)
      }
      """),
    ("weight a graph input", """
      g (float[1,2,4,4] x, float[3,2,1,1] w) => (float[1,3,4,4] y) <BN> {
        c = Conv (x, w)
        y = BatchNormalization (c, s, bb, m, v)
      }
      """),
    ("statistics a graph input", """
      g (float[1,2,4,4] x, float[3] v) => (float[1,3,4,4] y) <float[3,2,1,1] w = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, float[3] s = {0.5, -1.5, 2.0}, float[3] bb = {0.1, 0.2, -0.3}, float[3] m = {0.25, -0.5, 1.0}> {
        c = Conv (x, w)
        y = BatchNormalization (c, s, bb, m, v)
      }
      """),
    ("BN before a padded conv", """
      g (float[1,3,4,4] x) => (float[1,2,4,4] y) <float[2,3,3,3] w = \(floatLiteral(54)), BN> {
        n = BatchNormalization (x, s, bb, m, v)
        y = Conv <pads = [1, 1, 1, 1]> (n, w)
      }
      """),
    ("BN before a SAME conv", """
      g (float[1,3,4,4] x) => (float[1,2,4,4] y) <float[2,3,3,3] w = \(floatLiteral(54)), BN> {
        n = BatchNormalization (x, s, bb, m, v)
        y = Conv <auto_pad = "SAME_UPPER"> (n, w)
      }
      """),
    ("Gemm output read twice", """
      g (float[3,4] x) => (float[3,3] y, float[3,3] z) <float[4,3] w = \(floatLiteral(12)), BN> {
        c = Gemm (x, w)
        y = BatchNormalization (c, s, bb, m, v)
        z = Neg (c)
      }
      """),
  ]

  @Test(arguments: guards)
  func declines(_ name: String, _ body: String) throws {
    let model = "\(header)\n" + body.replacingOccurrences(of: "BN>", with: "\(bn3)>")
    try assertNoRewrite(FoldBatchNorm.self, model)
  }

  @Test func loneIsOffByDefault() throws {
    try assertNoRewrite(
      FoldBatchNorm.self,
      """
      \(header)
      g (float[1,3,2,2] x) => (float[1,3,2,2] y) <\(bn3)> {
        r = Relu (x)
        y = BatchNormalization (r, s, bb, m, v)
      }
      """)
  }

  @Test func trainingModeStaysEvenAsLone() throws {
    try assertNoRewrite(
      FoldBatchNorm.self, options: ["lone": "true"],
      """
      <ir_version: 8, opset_import: ["" : 15]>
      g (float[1,2,4,4] x) => (float[1,3,4,4] y) <float[3,2,1,1] w = \(floatLiteral(6)), \(bn3)> {
        c = Conv (x, w)
        y = BatchNormalization <training_mode = 1> (c, s, bb, m, v)
      }
      """)
  }

  @Test func nonSpatialBatchNormBeforeOpset9Stays() throws {
    try assertNoRewrite(
      FoldBatchNorm.self,
      """
      <ir_version: 3, opset_import: ["" : 8]>
      g (float[1,2,4,4] x) => (float[1,3,4,4] y) <float[3,2,1,1] w = \(floatLiteral(6)), \(bn3)> {
        c = Conv (x, w)
        y = BatchNormalization <spatial = 0> (c, s, bb, m, v)
      }
      """)
  }

  @Test func loneBatchNormOfUnknownRankStays() throws {
    try assertNoRewrite(
      FoldBatchNorm.self, options: ["lone": "true"],
      """
      \(header)
      g (float[] x) => (float[] y) <\(bn3)> {
        y = BatchNormalization (x, s, bb, m, v)
      }
      """)
  }
}
