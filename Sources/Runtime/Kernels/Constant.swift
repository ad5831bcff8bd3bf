import Graph

/// Constant: the value of whichever of `value`, `value_float(s)`, `value_int(s)` the node carries
/// (float16 upcast like every constant). Strings and sparse tensors are not supported.
struct Constant: Kernel {
  let value: NDArray

  init(_ builder: KernelBuilder) throws {
    var found: [NDArray] = []
    if let t = try builder.optionalTensor("value") {
      do {
        found.append(try NDArray.runtimeConstant(t))
      } catch {
        throw builder.attributeError("value", error.message)
      }
    }
    if let v = try builder.optionalFloat("value_float") { found.append(NDArray(scalar: v)) }
    if let v = try builder.optionalFloats("value_floats") { found.append(NDArray(v, shape: [v.count])) }
    if let v = try builder.optionalInt("value_int") { found.append(NDArray(scalar: Int64(v))) }
    if let v = try builder.optionalInts("value_ints") { found.append(NDArray(v.map { Int64($0) }, shape: [v.count])) }
    for name in ["value_string", "value_strings", "sparse_value"] where builder.has(name) {
      throw builder.attributeError(name, "string and sparse constants are not supported")
    }
    guard found.count == 1 else { throw builder.error("needs exactly one value attribute, found \(found.count)") }
    value = found[0]
  }

  func run(_ context: KernelContext) throws -> [NDArray] { [value] }
}
