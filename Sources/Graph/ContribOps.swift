/// onnxruntime's contrib operators (the `com.microsoft` domain) that rebirth writes and runs.
///
/// Standard ONNX has no fused attention before opset 23 and no Gelu before opset 20; onnxruntime
/// runs these on every execution provider. rebirth writes them only when the user allows contrib
/// operators (`fuse-attention`), runs them in its own runtime, and refuses them in `.tmf`.
extension OpType {
  public enum Contrib {
    /// The domain, imported at version 1 by a model that uses its operators.
    public static let domain = "com.microsoft"
    public static let version: Int64 = 1
    /// Multi-head self-attention with the Q, K and V projections packed into one weight:
    /// `Attention<num_heads, scale?>(input [B,S,Nin], weights [Nin, 3N], bias [3N]) → [B,S,N]`.
    public static let attention = "Attention"
    /// `x·½·(1 + erf(x/√2))`, elementwise.
    public static let gelu = "Gelu"
  }
}
