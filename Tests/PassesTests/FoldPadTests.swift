import Graph
import GraphTesting
import Passes
import Testing

@Suite struct FoldPadTests {
  let header = "<ir_version: 8, opset_import: [\"\" : 17]>"

  @Test func padIntoConv() throws {
    // Asymmetric pads add to the conv's own.
    try assertRewrite(
      FoldPad.self,
      """
      \(header)
      g (float[1,2,4,4] x) => (float[1,3,4,5] y) <float[3,2,3,3] w = \(floatLiteral(54)), int64[8] p = {0, 0, 1, 0, 0, 0, 0, 2}> {
        q = Pad (x, p)
        y = Conv <pads = [0, 1, 1, 1]> (q, w)
      }
      """,
      becomes: """
        \(header)
        g (float[1,2,4,4] x) => (float[1,3,4,5] y) <
          float[3,2,3,3] w = ["location": "#digest:e553ddf5d1aa0143"]
        > {
          y = Conv <pads: ints = [1, 1, 1, 3]> (x, w)
        }
        """)
  }

  @Test func padIntoAveragePoolCountingPads() throws {
    try assertRewrite(
      FoldPad.self,
      """
      \(header)
      g (float[1,2,4,4] x) => (float[1,2,3,3] y) <int64[8] p = {0, 0, 1, 1, 0, 0, 1, 1}> {
        q = Pad (x, p)
        y = AveragePool <kernel_shape = [2, 2], strides = [2, 2], count_include_pad = 1> (q)
      }
      """,
      becomes: """
        \(header)
        g (float[1,2,4,4] x) => (float[1,2,3,3] y) {
          y = AveragePool <count_include_pad: int = 1, kernel_shape: ints = [2, 2], pads: ints = [1, 1, 1, 1], strides: ints = [2, 2]> (x)
        }
        """)
  }

  @Test func padIntoMaxPoolAfterRelu() throws {
    try assertRewrite(
      FoldPad.self,
      """
      \(header)
      g (float[1,2,4,4] x) => (float[1,2,3,3] y) <int64[8] p = {0, 0, 1, 1, 0, 0, 1, 1}> {
        r = Relu (x)
        q = Pad (r, p)
        y = MaxPool <kernel_shape = [2, 2], strides = [2, 2]> (q)
      }
      """,
      becomes: """
        \(header)
        g (float[1,2,4,4] x) => (float[1,2,3,3] y) {
          r = Relu (x)
          y = MaxPool <kernel_shape: ints = [2, 2], pads: ints = [1, 1, 1, 1], strides: ints = [2, 2]> (r)
        }
        """)
  }

  @Test func minusInfinityPadIntoMaxPool() throws {
    try assertRewrite(
      FoldPad.self,
      """
      \(header)
      g (float[1,2,4,4] x) => (float[1,2,4,4] y) <int64[8] p = {0, 0, 1, 1, 0, 0, 1, 1}, float v = {-inf}> {
        q = Pad (x, p, v)
        y = MaxPool <kernel_shape = [3, 3]> (q)
      }
      """,
      becomes: """
        \(header)
        g (float[1,2,4,4] x) => (float[1,2,4,4] y) {
          y = MaxPool <kernel_shape: ints = [3, 3], pads: ints = [1, 1, 1, 1]> (x)
        }
        """)
  }

  @Test func opset18PadWithAxes() throws {
    try assertRewrite(
      FoldPad.self,
      """
      <ir_version: 8, opset_import: ["" : 18]>
      g (float[1,2,4,4] x) => (float[1,3,4,4] y) <float[3,2,3,3] w = \(floatLiteral(54)), int64[4] p = {1, 1, 1, 1}, int64[2] axes = {-1, 2}> {
        q = Pad (x, p, , axes)
        y = Conv (q, w)
      }
      """,
      becomes: """
        <ir_version: 8, opset_import: ["" : 18]>
        g (float[1,2,4,4] x) => (float[1,3,4,4] y) <
          float[3,2,3,3] w = ["location": "#digest:e553ddf5d1aa0143"]
        > {
          y = Conv <pads: ints = [1, 1, 1, 1]> (x, w)
        }
        """)
  }

  @Test func opset10PadAttributes() throws {
    try assertRewrite(
      FoldPad.self,
      """
      <ir_version: 5, opset_import: ["" : 10]>
      g (float[1,2,4,4] x) => (float[1,3,4,4] y) <float[3,2,3,3] w = \(floatLiteral(54))> {
        q = Pad <pads = [0, 0, 1, 1, 0, 0, 1, 1]> (x)
        y = Conv (q, w)
      }
      """,
      becomes: """
        <ir_version: 5, opset_import: ["" : 10]>
        g (float[1,2,4,4] x) => (float[1,3,4,4] y) <
          float[3,2,3,3] w = ["location": "#digest:e553ddf5d1aa0143"]
        > {
          y = Conv <pads: ints = [1, 1, 1, 1]> (x, w)
        }
        """)
  }

  // MARK: Guards

  static let guards: [(String, String)] = [
    ("reflect", """
      g (float[1,2,4,4] x) => (float[1,3,4,4] y) <float[3,2,3,3] w = W54, int64[8] p = {0, 0, 1, 1, 0, 0, 1, 1}> {
        q = Pad <mode = "reflect"> (x, p)
        y = Conv (q, w)
      }
      """),
    ("a pad on the channel axis", """
      g (float[1,1,4,4] x) => (float[1,3,2,2] y) <float[3,2,3,3] w = W54, int64[8] p = {0, 1, 0, 0, 0, 0, 0, 0}> {
        q = Pad (x, p)
        y = Conv (q, w)
      }
      """),
    ("a nonzero pad value", """
      g (float[1,2,4,4] x) => (float[1,3,4,4] y) <float[3,2,3,3] w = W54, int64[8] p = {0, 0, 1, 1, 0, 0, 1, 1}, float v = {1.0}> {
        q = Pad (x, p, v)
        y = Conv (q, w)
      }
      """),
    ("a negative pad", """
      g (float[1,2,6,6] x) => (float[1,3,2,2] y) <float[3,2,3,3] w = W54, int64[8] p = {0, 0, -1, -1, 0, 0, -1, -1}> {
        q = Pad (x, p)
        y = Conv (q, w)
      }
      """),
    ("an AveragePool that does not count pads", """
      g (float[1,2,4,4] x) => (float[1,2,3,3] y) <int64[8] p = {0, 0, 1, 1, 0, 0, 1, 1}> {
        q = Pad (x, p)
        y = AveragePool <kernel_shape = [2, 2], strides = [2, 2]> (q)
      }
      """),
    ("a MaxPool of a value that may be negative", """
      g (float[1,2,4,4] x) => (float[1,2,3,3] y) <int64[8] p = {0, 0, 1, 1, 0, 0, 1, 1}> {
        q = Pad (x, p)
        y = MaxPool <kernel_shape = [2, 2], strides = [2, 2]> (q)
      }
      """),
    ("a MaxPool window all in padding", """
      g (float[1,2,4,4] x) => (float[1,2,4,4] y) <int64[8] p = {0, 0, 2, 2, 0, 0, 2, 2}> {
        r = Relu (x)
        q = Pad (r, p)
        y = MaxPool <kernel_shape = [2, 2], strides = [2, 2]> (q)
      }
      """),
    ("a SAME conv", """
      g (float[1,2,4,4] x) => (float[1,3,6,6] y) <float[3,2,3,3] w = W54, int64[8] p = {0, 0, 1, 1, 0, 0, 1, 1}> {
        q = Pad (x, p)
        y = Conv <auto_pad = "SAME_UPPER"> (q, w)
      }
      """),
    ("the Pad output used twice", """
      g (float[1,2,4,4] x) => (float[1,3,4,4] y, float[1,2,6,6] z) <float[3,2,3,3] w = W54, int64[8] p = {0, 0, 1, 1, 0, 0, 1, 1}> {
        q = Pad (x, p)
        y = Conv (q, w)
        z = Relu (q)
      }
      """),
    ("pads a graph input", """
      g (float[1,2,4,4] x, int64[8] p) => (float[1,3,?,?] y) <float[3,2,3,3] w = W54> {
        q = Pad (x, p)
        y = Conv (q, w)
      }
      """),
  ]

  @Test(arguments: guards)
  func declines(_ name: String, _ body: String) throws {
    try assertNoRewrite(FoldPad.self, "\(header)\n" + body.replacingOccurrences(of: "W54", with: floatLiteral(54)))
  }
}
