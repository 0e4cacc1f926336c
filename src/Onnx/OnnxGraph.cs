using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace Autograd.Onnx;

/// <summary>
/// Builds one ONNX graph: initializers, nodes with fresh value names, graph inputs and outputs, and writes the model
/// (IR version 8, opset 17 of the default domain) through OnnxSharp's generated protobuf classes.
/// </summary>
internal sealed class OnnxGraph
{
    /// <summary>The opset of the default ONNX domain the exporters write.</summary>
    public const int Opset = 17;

    /// <summary>The symbolic name of the dynamic first dimension of the inputs and outputs of an exported network.</summary>
    public const string BatchDim = "batch";

    private readonly GraphProto _graph = new() { Name = "autograd" };
    private readonly HashSet<string> _names = [];
    private readonly Dictionary<(double, DType), string> _scalars = [];
    private int _counter;

    /// <summary>The ONNX element type of <paramref name="dtype"/>.</summary>
    public static int ElementType(DType dtype) => dtype switch
    {
        DType.Float32 => (int)TensorProto.Types.DataType.Float,
        DType.Float64 => (int)TensorProto.Types.DataType.Double,
        _ => (int)TensorProto.Types.DataType.Int64,
    };

    /// <summary>A value name not used yet, built from <paramref name="hint"/>.</summary>
    public string Fresh(string hint)
    {
        var name = hint;
        while (!_names.Add(name))
        {
            name = string.Create(CultureInfo.InvariantCulture, $"{hint}_{++_counter}");
        }

        return name;
    }

    /// <summary>Adds the tensor <paramref name="t"/> as an initializer named (close to) <paramref name="name"/>; returns its name.</summary>
    public string Initializer(string name, Tensor t)
    {
        var proto = new TensorProto { Name = Fresh(name), DataType = ElementType(t.DType) };
        foreach (var d in t.Shape.ToArray())
        {
            proto.Dims.Add(d);
        }

        proto.RawData = t.DType switch
        {
            DType.Float32 => ByteString.CopyFrom(MemoryMarshal.AsBytes(t.AsSpan<float>())),
            DType.Float64 => ByteString.CopyFrom(MemoryMarshal.AsBytes(t.AsSpan<double>())),
            _ => ByteString.CopyFrom(MemoryMarshal.AsBytes(t.AsSpan<long>())),
        };
        _graph.Initializer.Add(proto);
        return proto.Name;
    }

    /// <summary>A rank-0 initializer holding <paramref name="value"/> in <paramref name="dtype"/> (shared between uses).</summary>
    public string Scalar(double value, DType dtype)
    {
        if (_scalars.TryGetValue((value, dtype), out var name))
        {
            return name;
        }

        var t = dtype switch
        {
            DType.Float32 => Tensor.FromArray([(float)value]).Reshape(),
            DType.Float64 => Tensor.FromArray([value]).Reshape(),
            _ => Tensor.FromArray([(long)value]).Reshape(),
        };
        name = Initializer("const", t);
        _scalars[(value, dtype)] = name;
        return name;
    }

    /// <summary>A rank-1 int64 initializer holding <paramref name="values"/> (shapes, axes, slice bounds).</summary>
    public string Ints(string hint, params long[] values) => Initializer(hint, Tensor.FromArray(values, values.Length));

    /// <summary>Adds a node of <paramref name="op"/> with one output; returns the output's name.</summary>
    public string Node(string op, string[] inputs, params AttributeProto[] attributes)
        => Node(op, inputs, 1, attributes)[0];

    /// <summary>Adds a node of <paramref name="op"/> with <paramref name="outputs"/> outputs; returns their names.</summary>
    public string[] Node(string op, string[] inputs, int outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = Fresh(op.ToLowerInvariant() + "_node") };
        node.Input.AddRange(inputs);
        var names = new string[outputs];
        for (var i = 0; i < outputs; i++)
        {
            names[i] = Fresh(op.ToLowerInvariant());
            node.Output.Add(names[i]);
        }

        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
        return names;
    }

    /// <summary>Declares a graph input named <paramref name="name"/> of <paramref name="dtype"/>, dim 0 symbolic when <paramref name="dynamicBatch"/>.</summary>
    public string Input(string name, DType dtype, Shape shape, bool dynamicBatch)
    {
        var value = ValueInfo(Fresh(name), dtype, shape, dynamicBatch);
        _graph.Input.Add(value);
        return value.Name;
    }

    /// <summary>Declares <paramref name="value"/> as a graph output named <paramref name="name"/> (through an Identity node).</summary>
    public void Output(string value, string name, DType dtype, Shape shape, bool dynamicBatch)
    {
        var output = Fresh(name);
        var node = new NodeProto { OpType = "Identity", Name = Fresh("identity_node") };
        node.Input.Add(value);
        node.Output.Add(output);
        _graph.Node.Add(node);
        _graph.Output.Add(ValueInfo(output, dtype, shape, dynamicBatch));
    }

    /// <summary>True when a node reads the value <paramref name="name"/>.</summary>
    public bool IsRead(string name) => _graph.Node.Any(n => n.Input.Contains(name));

    /// <summary>The model: this graph with the opset import, producer and IR version.</summary>
    public ModelProto ToModel(string docString)
    {
        var model = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "Autograd",
            ProducerVersion = typeof(Tensor).Assembly.GetName().Version?.ToString() ?? "0",
            DocString = docString,
            Graph = _graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = Opset });
        return model;
    }

    /// <summary>Writes the model to <paramref name="stream"/>.</summary>
    public void Write(Stream stream, string docString)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ToModel(docString).WriteTo(stream);
    }

    /// <summary>An integer attribute.</summary>
    public static AttributeProto Int(string name, long value)
        => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    /// <summary>A float attribute.</summary>
    public static AttributeProto Float(string name, double value)
        => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = (float)value };

    /// <summary>A list-of-integers attribute.</summary>
    public static AttributeProto Ints(string name, IEnumerable<long> values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    private static ValueInfoProto ValueInfo(string name, DType dtype, Shape shape, bool dynamicBatch)
    {
        var tensorType = new TypeProto.Types.Tensor { ElemType = ElementType(dtype), Shape = new TensorShapeProto() };
        var dims = shape.ToArray();
        for (var i = 0; i < dims.Length; i++)
        {
            tensorType.Shape.Dim.Add(i == 0 && dynamicBatch
                ? new TensorShapeProto.Types.Dimension { DimParam = BatchDim }
                : new TensorShapeProto.Types.Dimension { DimValue = dims[i] });
        }

        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensorType } };
    }
}
