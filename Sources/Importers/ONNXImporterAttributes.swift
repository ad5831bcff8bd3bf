// AttributeProto → Attribute and TypeProto → ValueType.

import CProtobufC
import Graph
import ONNXProto

extension ModelReader {
  /// Converts an attribute of `owner` (a node or function, named in errors).
  func attribute(_ a: UnsafeMutablePointer<Onnx__AttributeProto>, owner: String) throws(ImportError) -> Attribute {
    let p = a.pointee
    let name = text(p.name)
    guard !name.isEmpty else { throw fail("\(owner) has an attribute with an empty name") }
    let docString = text(p.doc_string)
    let typeCode = p.has_type != 0 ? p.type.rawValue : inferredType(p)
    if let ref = p.ref_attr_name, ref.pointee != 0 {
      return Attribute(
        name, .reference(type: Int32(bitPattern: typeCode)), refAttrName: text(ref), docString: docString)
    }
    let what = "attribute '\(name)' of \(owner)"
    let value = try attributeValue(a, typeCode: typeCode, what: what)
    return Attribute(name, value, docString: docString)
  }

  private func attributeValue(
    _ a: UnsafeMutablePointer<Onnx__AttributeProto>, typeCode: UInt32, what: String
  ) throws(ImportError) -> Attribute.Value {
    let p = a.pointee
    switch Onnx__AttributeProto__AttributeType(rawValue: typeCode) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: return .float(p.f)
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: return .int(p.i)
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: return .string(byteArray(p.s))
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
      guard let t = p.t else { throw fail("\(what) has no tensor") }
      return .tensor(try tensor(t, what))
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
      guard let g = p.g else { throw fail("\(what) has no graph") }
      return .graph(try subgraph(g, what))
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR:
      guard let s = p.sparse_tensor else { throw fail("\(what) has no sparse tensor") }
      return .sparseTensor(opaque(s))
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO:
      guard let type = valueType(p.tp) else { throw fail("\(what) has no type") }
      return .type(type)
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS: return .floats(Array(scalars(p.floats, p.n_floats)))
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: return .ints(Array(scalars(p.ints, p.n_ints)))
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
      return .strings(scalars(p.strings, p.n_strings).map { byteArray($0) })
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS:
      var tensors: [Tensor] = []
      for (i, t) in messages(p.tensors, p.n_tensors).enumerated() {
        tensors.append(try tensor(t, "\(what), tensor \(i)"))
      }
      return .tensors(tensors)
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
      var graphs: [Graph] = []
      for (i, g) in messages(p.graphs, p.n_graphs).enumerated() {
        graphs.append(try subgraph(g, "\(what), graph \(i)"))
      }
      return .graphs(graphs)
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS:
      return .sparseTensors(messages(p.sparse_tensors, p.n_sparse_tensors).map { opaque($0) })
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS:
      var types: [ValueType] = []
      for tp in messages(p.type_protos, p.n_type_protos) {
        guard let type = valueType(tp) else { throw fail("\(what) holds an empty type") }
        types.append(type)
      }
      return .types(types)
    default:
      if typeCode == 0 { throw fail("\(what) has no type and no value") }
      throw fail("\(what) has unknown type \(typeCode)")
    }
  }

  private func subgraph(_ g: UnsafeMutablePointer<Onnx__GraphProto>, _ what: String) throws(ImportError) -> Graph {
    do { return try graph(g, scope: .subgraph) } catch { throw fail("in \(what): \(error.message)") }
  }

  /// The type of an attribute written without one (IR version 1), from the field that is set;
  /// 0 when none is.
  private func inferredType(_ p: Onnx__AttributeProto) -> UInt32 {
    let candidates: [(Bool, Onnx__AttributeProto__AttributeType)] = [
      (p.has_f != 0, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT),
      (p.has_i != 0, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT),
      (p.has_s != 0, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING),
      (p.t != nil, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR),
      (p.g != nil, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH),
      (p.sparse_tensor != nil, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR),
      (p.tp != nil, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO),
      (p.n_floats > 0, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS),
      (p.n_ints > 0, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS),
      (p.n_strings > 0, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS),
      (p.n_tensors > 0, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS),
      (p.n_graphs > 0, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS),
      (p.n_sparse_tensors > 0, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS),
      (p.n_type_protos > 0, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS),
    ]
    return candidates.first { $0.0 }?.1.rawValue ?? 0
  }

  // MARK: Types

  /// A `TypeProto` as a value type; nil when absent or when no kind of type is set.
  func valueType(_ tp: UnsafeMutablePointer<Onnx__TypeProto>?) -> ValueType? {
    guard let tp else { return nil }
    let p = tp.pointee
    switch p.value_case {
    case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE:
      guard let t = p.tensor_type else { return nil }
      return .tensor(
        DType(rawValue: t.pointee.has_elem_type != 0 ? t.pointee.elem_type : 0), shape: shape(t.pointee.shape))
    case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE:
      guard let t = p.sparse_tensor_type else { return nil }
      return .sparseTensor(
        DType(rawValue: t.pointee.has_elem_type != 0 ? t.pointee.elem_type : 0), shape: shape(t.pointee.shape))
    case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE:
      guard let s = p.sequence_type else { return nil }
      return .sequence(valueType(s.pointee.elem_type))
    case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE:
      guard let o = p.optional_type else { return nil }
      return .optional(valueType(o.pointee.elem_type))
    case ONNX__TYPE_PROTO__VALUE_MAP_TYPE:
      guard let m = p.map_type else { return nil }
      let key = DType(rawValue: m.pointee.has_key_type != 0 ? m.pointee.key_type : 0)
      return .map(key: key, value: valueType(m.pointee.value_type))
    case ONNX__TYPE_PROTO__VALUE_OPAQUE_TYPE:
      guard let o = p.opaque_type else { return nil }
      return .opaque(domain: text(o.pointee.domain), name: text(o.pointee.name))
    default:
      return nil
    }
  }

  /// A shape; nil (unknown rank) when absent. A negative `dim_value`, which some exporters write
  /// for "unknown", and an empty `dim_param` read as unknown dims.
  private func shape(_ s: UnsafeMutablePointer<Onnx__TensorShapeProto>?) -> [Dim]? {
    guard let s else { return nil }
    return messages(s.pointee.dim, s.pointee.n_dim).map { d -> Dim in
      switch d.pointee.value_case {
      case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE:
        let v = d.pointee.dim_value
        guard v >= 0, let value = Int(exactly: v) else { return .unknown }
        return .value(value)
      case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM:
        let param = text(d.pointee.dim_param)
        return param.isEmpty ? .unknown : .param(param)
      default:
        return .unknown
      }
    }
  }
}
