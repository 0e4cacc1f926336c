using System.Globalization;
using MathNet.Numerics.Distributions;
using MathNet.Numerics.Random;

namespace Autograd;

/// <content>Factories: tensors from arrays, constants, ranges and seeded random numbers.</content>
public sealed partial class Tensor
{
    /// <summary>A tensor with zeroed storage; the building block of operators that accumulate into their result.</summary>
    internal static Tensor Empty(Shape shape, DType dtype)
    {
        var t = new Tensor(shape, dtype, TensorScope.Allocate(dtype, shape.ElementCount, clear: true)) { WalkBirth = Autodiff.CurrentWalk };
        if (TapeObserver.Current is not null)
        {
            TapeObserver.RaiseAllocated(t);
        }

        return t;
    }

    /// <summary>
    /// A tensor whose storage is not cleared (large arrays come from <see cref="GC.AllocateUninitializedArray{T}"/>), for
    /// operators whose kernel writes every element of the result.
    /// </summary>
    internal static Tensor Uninitialized(Shape shape, DType dtype)
    {
        var t = new Tensor(shape, dtype, TensorScope.Allocate(dtype, shape.ElementCount, clear: false)) { WalkBirth = Autodiff.CurrentWalk };
        if (TapeObserver.Current is not null)
        {
            TapeObserver.RaiseAllocated(t);
        }

        return t;
    }

    /// <summary>A placeholder that never carries a tangent, for the number of an operation with a number (see Node).</summary>
    internal static readonly Tensor NoTangent = new(Shape.Scalar, DType.Float64, new double[1], unscoped: true);

    /// <summary>A rank-0 constant holding <paramref name="value"/>, made without an allocation event (for observers' views of a number operand).</summary>
    internal static Tensor ScalarConstant(double value, DType dtype) => dtype switch
    {
        DType.Float64 => new Tensor(Shape.Scalar, dtype, new[] { value }, unscoped: true),
        DType.Float32 => new Tensor(Shape.Scalar, dtype, new[] { (float)value }, unscoped: true),
        _ => new Tensor(Shape.Scalar, dtype, new[] { (long)value }, unscoped: true),
    };

    internal static Array AllocateUninitialized(DType dtype, int count) => dtype switch
    {
        DType.Float64 => count == 0 ? Array.Empty<double>() : GC.AllocateUninitializedArray<double>(count),
        DType.Float32 => count == 0 ? Array.Empty<float>() : GC.AllocateUninitializedArray<float>(count),
        DType.Int64 => count == 0 ? Array.Empty<long>() : GC.AllocateUninitializedArray<long>(count),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
    };

    internal static Array Allocate(DType dtype, int count) => dtype switch
    {
        DType.Float64 => count == 0 ? Array.Empty<double>() : new double[count],
        DType.Float32 => count == 0 ? Array.Empty<float>() : new float[count],
        DType.Int64 => count == 0 ? Array.Empty<long>() : new long[count],
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
    };

    /// <summary>A tensor over a copy of <paramref name="data"/> with the given shape (float64).</summary>
    /// <exception cref="ArgumentException">The shape's element count differs from the data length.</exception>
    public static Tensor FromArray(double[] data, params int[] shape) => FromData(data, shape, DType.Float64);

    /// <summary>A tensor over a copy of <paramref name="data"/> with the given shape (float32).</summary>
    /// <exception cref="ArgumentException">The shape's element count differs from the data length.</exception>
    public static Tensor FromArray(float[] data, params int[] shape) => FromData(data, shape, DType.Float32);

    /// <summary>A tensor over a copy of <paramref name="data"/> with the given shape (int64).</summary>
    /// <exception cref="ArgumentException">The shape's element count differs from the data length.</exception>
    public static Tensor FromArray(long[] data, params int[] shape) => FromData(data, shape, DType.Int64);

    private static Tensor FromData(Array data, int[] shape, DType dtype)
    {
        var s = shape.Length == 0 && data.Length != 1 ? new Shape(data.Length) : ShapeFor("FromArray", shape);
        if (s.ElementCount != data.Length)
        {
            throw new ArgumentException($"FromArray: shape {s} holds {s.ElementCount} elements but the data has {data.Length}.", nameof(shape));
        }

        var storage = Allocate(dtype, data.Length);
        Array.Copy(data, storage, data.Length);
        return new Tensor(s, dtype, storage);
    }

    /// <summary>A one-dimensional float64 tensor holding a copy of <paramref name="values"/>.</summary>
    public static Tensor From(params double[] values) => FromArray(values, values.Length);

    /// <summary>A one-dimensional float32 tensor holding a copy of <paramref name="values"/>.</summary>
    public static Tensor From(params float[] values) => FromArray(values, values.Length);

    /// <summary>A rank-0 tensor holding one value.</summary>
    public static Tensor Scalar(double value, DType dtype = DType.Float64) => Full(Shape.Scalar, value, dtype);

    /// <summary>
    /// A tensor from nested data: a rectangular multi-dimensional array (<c>double[,]</c>, <c>float[,,]</c>, …), a jagged
    /// array (<c>double[][]</c>, …) whose rows all have the same length, or a mix. The dtype follows the element type
    /// (double → float64, float → float32, long/int → int64) unless <paramref name="dtype"/> is given.
    /// </summary>
    /// <exception cref="ArgumentException">The data is ragged, empty in an ambiguous way, or of an unsupported element type, or a value has no int64 value when the dtype is int64.</exception>
    public static Tensor From(Array nested, DType? dtype = null)
    {
        var dims = new List<int>();
        var leafType = ProbeNested(nested, dims);
        var inferred = leafType == typeof(double) ? DType.Float64
            : leafType == typeof(float) ? DType.Float32
            : leafType == typeof(long) || leafType == typeof(int) ? DType.Int64
            : throw new ArgumentException($"From: unsupported element type {leafType.Name}; use double, float, long or int.", nameof(nested));
        var result = Uninitialized(new Shape([.. dims]), dtype ?? inferred);
        var pos = 0;
        FillNested(nested, dims, 0, result, ref pos);
        return result;
    }

    private static Type ProbeNested(Array a, List<int> dims)
    {
        for (var r = 0; r < a.Rank; r++)
        {
            dims.Add(a.GetLength(r));
        }

        var et = a.GetType().GetElementType()!;
        if (!et.IsArray)
        {
            return et;
        }

        if (a.Length == 0)
        {
            throw new ArgumentException("From: a jagged array with no rows has no inner shape; use FromArray with an explicit shape.", nameof(a));
        }

        var e = a.GetEnumerator();
        e.MoveNext();
        return ProbeNested((Array)e.Current!, dims);
    }

    private static void FillNested(Array a, List<int> dims, int depth, Tensor dst, ref int pos)
    {
        for (var r = 0; r < a.Rank; r++)
        {
            if (a.GetLength(r) != dims[depth + r])
            {
                throw new ArgumentException(
                    $"From: ragged nested data: dimension {depth + r} has length {a.GetLength(r)} here but {dims[depth + r]} in the first row.");
            }
        }

        foreach (var item in a)
        {
            if (item is Array inner)
            {
                FillNested(inner, dims, depth + a.Rank, dst, ref pos);
            }
            else
            {
                var value = Convert.ToDouble(item, CultureInfo.InvariantCulture);
                if (dst.DType == DType.Int64 && !(value >= -9.2233720368547758e18 && value < 9.2233720368547758e18))
                {
                    throw new ArgumentException(
                        $"From: element {pos} (flat index) is {value.ToString(CultureInfo.InvariantCulture)}, which has no int64 value (NaN, ±∞ and values outside [−2⁶³, 2⁶³) are refused); the data has shape [{string.Join(", ", dims)}].",
                        nameof(a));
                }

                dst.SetFlat(pos++, value);
            }
        }
    }

    /// <summary>A tensor of zeros.</summary>
    public static Tensor Zeros(Shape shape, DType dtype = DType.Float64) => Empty(shape, dtype);

    /// <summary>A float64 tensor of zeros with the given sizes.</summary>
    /// <exception cref="ArgumentException">A size is negative, or the sizes hold more elements than an array can.</exception>
    public static Tensor Zeros(params int[] shape) => Empty(ShapeFor("Zeros", shape), DType.Float64);

    /// <summary>A tensor of ones.</summary>
    public static Tensor Ones(Shape shape, DType dtype = DType.Float64) => Full(shape, 1.0, dtype);

    /// <summary>A float64 tensor of ones with the given sizes.</summary>
    /// <exception cref="ArgumentException">A size is negative, or the sizes hold more elements than an array can.</exception>
    public static Tensor Ones(params int[] shape) => Full(ShapeFor("Ones", shape), 1.0, DType.Float64);

    /// <summary>A tensor with every element equal to <paramref name="value"/>.</summary>
    /// <exception cref="ArgumentException">The dtype is int64 and the value has no int64 value (NaN, ±∞ or out of range).</exception>
    public static Tensor Full(Shape shape, double value, DType dtype = DType.Float64)
    {
        if (dtype == DType.Int64 && !(value >= -9.2233720368547758e18 && value < 9.2233720368547758e18))
        {
            throw new ArgumentException(
                $"Full: the value {value.ToString(CultureInfo.InvariantCulture)} has no int64 value (NaN, ±∞ and values outside [−2⁶³, 2⁶³) are refused); shape {shape}.",
                nameof(value));
        }

        var t = Uninitialized(shape, dtype);
        switch (dtype)
        {
            case DType.Float64: t.Span<double>().Fill(value); break;
            case DType.Float32: t.Span<float>().Fill((float)value); break;
            default: t.Span<long>().Fill((long)value); break;
        }

        return t;
    }

    /// <summary>Zeros with the shape and dtype of <paramref name="like"/>.</summary>
    public static Tensor ZerosLike(Tensor like) => Empty(like.Shape, like.DType);

    /// <summary>Ones with the shape and dtype of <paramref name="like"/>.</summary>
    public static Tensor OnesLike(Tensor like) => Full(like.Shape, 1.0, like.DType);

    /// <summary>
    /// The values start, start + step, … up to but excluding <paramref name="stop"/>, as a one-dimensional tensor
    /// (as <c>torch.arange</c>).
    /// </summary>
    /// <exception cref="ArgumentException">A bound or the step is NaN or infinite, the step is zero, its sign cannot reach <paramref name="stop"/>, or the range has more values than a tensor can hold.</exception>
    public static Tensor Arange(double start, double stop, double step = 1.0, DType dtype = DType.Float64)
    {
        if (step == 0 || !double.IsFinite(step) || !double.IsFinite(start) || !double.IsFinite(stop))
        {
            var name = !double.IsFinite(start) ? nameof(start) : !double.IsFinite(stop) ? nameof(stop) : nameof(step);
            throw new ArgumentException($"Arange: invalid range start={start}, stop={stop}, step={step}; the bounds and the step must be finite numbers (not NaN or ±∞) and the step non-zero.", name);
        }

        var n = Math.Ceiling((stop - start) / step);
        if (n < 0)
        {
            throw new ArgumentException($"Arange: step {step} moves away from stop {stop} starting at {start}.", nameof(step));
        }

        if (!(n <= Array.MaxLength))
        {
            throw new ArgumentException($"Arange: start={start}, stop={stop}, step={step} gives {n} values, more than a tensor can hold ({Array.MaxLength}).", nameof(step));
        }

        var t = Uninitialized(new Shape((int)n), dtype);
        for (var i = 0; i < (int)n; i++)
        {
            t.SetFlat(i, start + (i * step));
        }

        return t;
    }

    /// <summary>The values 0, 1, …, <paramref name="stop"/> − 1.</summary>
    public static Tensor Arange(int stop, DType dtype = DType.Float64) => Arange(0, stop, 1, dtype);

    /// <summary>Samples from the standard normal distribution (mean 0, standard deviation 1), reproducible from <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentException">The dtype is not a float type, the mean is not finite, or the std is negative or not finite.</exception>
    public static Tensor RandN(Shape shape, int seed, DType dtype = DType.Float64, double mean = 0.0, double std = 1.0)
    {
        RequireRandomDType("RandN", shape, dtype);
        if (!double.IsFinite(mean) || !(std >= 0 && double.IsFinite(std)))
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"RandN: the mean must be finite and the std a finite number ≥ 0, got mean {mean} and std {std} (shape {shape})."),
                double.IsFinite(mean) ? nameof(std) : nameof(mean));
        }

        var normal = new Normal(mean, std, new MersenneTwister(seed));
        return FromSamples(shape, dtype, normal.Sample);
    }

    /// <summary>Samples uniform in [<paramref name="low"/>, <paramref name="high"/>), reproducible from <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentException">The dtype is not a float type, or the range is empty or has a bound that is not finite.</exception>
    public static Tensor Rand(Shape shape, int seed, DType dtype = DType.Float64, double low = 0.0, double high = 1.0)
    {
        RequireRandomDType("Rand", shape, dtype);
        if (!(high > low))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Rand: the range [{low}, {high}) is empty (shape {shape})."), nameof(high));
        }

        if (!double.IsFinite(low) || !double.IsFinite(high))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Rand: the bounds must be finite, got [{low}, {high}) (shape {shape})."), double.IsFinite(low) ? nameof(high) : nameof(low));
        }

        var uniform = new ContinuousUniform(low, high, new MersenneTwister(seed));
        return FromSamples(shape, dtype, uniform.Sample);
    }

    private static void RequireRandomDType(string op, Shape shape, DType dtype)
    {
        if (!dtype.IsFloatingPoint())
        {
            throw new ArgumentException($"{op}: random tensors must be float64 or float32, not {dtype.Name()} (shape {shape}).", nameof(dtype));
        }
    }

    /// <summary>The shape of <paramref name="shape"/>, or an exception naming <paramref name="op"/> when a size is negative or the sizes hold too many elements.</summary>
    private static Shape ShapeFor(string op, int[] shape)
    {
        var text = $"[{string.Join(", ", shape)}]";
        long count = 1;
        foreach (var d in shape)
        {
            if (d < 0)
            {
                throw new ArgumentException($"{op}: shape {text} has a negative dimension size {d}.", nameof(shape));
            }

            count = Math.Min(count * d, (long)Array.MaxLength + 1);
        }

        if (count > Array.MaxLength)
        {
            throw new ArgumentException($"{op}: shape {text} has more elements than an array can hold ({Array.MaxLength}).", nameof(shape));
        }

        return new Shape(shape);
    }

    private static Tensor FromSamples(Shape shape, DType dtype, Func<double> sample)
    {
        var t = Uninitialized(shape, dtype);
        for (var i = 0; i < t.ElementCount; i++)
        {
            t.SetFlat(i, sample());
        }

        return t;
    }

    /// <summary>A new leaf with a copy of this tensor's data (not recorded on the tape).</summary>
    public Tensor Clone()
    {
        var t = Uninitialized(Shape, DType);
        Array.Copy(Storage, Offset, t.Storage, 0, ElementCount);
        return t;
    }

    /// <summary>The elements in row-major order, converted to <see cref="double"/>.</summary>
    public double[] ToArray()
    {
        var a = new double[ElementCount];
        for (var i = 0; i < a.Length; i++)
        {
            a[i] = GetFlat(i);
        }

        return a;
    }

    /// <summary>A copy of the elements in row-major order; <typeparamref name="T"/> must match the dtype.</summary>
    /// <exception cref="InvalidOperationException"><typeparamref name="T"/> is not the element type of this tensor's dtype.</exception>
    public T[] ToArray<T>() => ElementsAs<T>("ToArray").ToArray();

    /// <summary>
    /// The element at a full index (one entry per dimension; negative entries count from the end), as a double. Setting
    /// it writes the element in place (converted to the dtype) and bumps <see cref="Version"/>; the setter is not
    /// recorded on the tape.
    /// </summary>
    /// <exception cref="ArgumentException">The index has the wrong number of entries.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An entry is outside its dimension.</exception>
    /// <exception cref="InvalidOperationException">Set on a tensor that requires grad while grad mode is on (write it inside <see cref="NoGrad"/>).</exception>
    [System.Runtime.CompilerServices.IndexerName("At")]
    public double this[params ReadOnlySpan<int> index]
    {
        get => GetFlat(FlatIndex(index));
        set
        {
            var flat = FlatIndex(index);
            CheckWritable("Indexer");
            MarkWritten("the Tensor indexer", member: string.Empty);
            SetFlat(flat, value);
        }
    }

    private int FlatIndex(ReadOnlySpan<int> index)
    {
        if (index.Length != Rank)
        {
            throw new ArgumentException($"Indexer: {index.Length} indices for a tensor of rank {Rank} and shape {Shape}.", nameof(index));
        }

        var flat = 0;
        var strides = Shape.Strides;
        for (var d = 0; d < Rank; d++)
        {
            var i = index[d] < 0 ? index[d] + Shape[d] : index[d];
            if (i < 0 || i >= Shape[d])
            {
                throw new ArgumentOutOfRangeException(nameof(index), $"Indexer: index {index[d]} is out of range for dimension {d} of size {Shape[d]} (shape {Shape}).");
            }

            flat += i * strides[d];
        }

        return flat;
    }

    /// <summary>The value of a one-element tensor.</summary>
    /// <exception cref="InvalidOperationException">The tensor does not have exactly one element.</exception>
    public double Item()
    {
        if (ElementCount != 1)
        {
            throw new InvalidOperationException($"Item(): only a one-element tensor can be converted to a number; this one has shape {Shape} ({ElementCount} elements).");
        }

        return GetFlat(0);
    }

    internal double GetFlat(int i) => Storage switch
    {
        double[] d => d[Offset + i],
        float[] f => f[Offset + i],
        long[] l => l[Offset + i],
        _ => throw new InvalidOperationException("Unknown storage."),
    };

    internal void SetFlat(int i, double value)
    {
        switch (Storage)
        {
            case double[] d: d[Offset + i] = value; break;
            case float[] f: f[Offset + i] = (float)value; break;
            case long[] l: l[Offset + i] = (long)value; break;
        }
    }
}
