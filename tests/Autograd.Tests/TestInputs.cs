using System.Buffers.Binary;
using System.IO.Compression;

namespace Autograd.Tests;

/// <summary>Inputs the loader tests build: IDX files in memory and their gzip form.</summary>
internal static class IdxBytes
{
    /// <summary>An IDX file: magic 00 00 type ndim, big-endian sizes, then the already big-endian data.</summary>
    public static byte[] Idx(byte type, int[] dims, byte[] data)
    {
        var bytes = new byte[4 + (4 * dims.Length) + data.Length];
        bytes[2] = type;
        bytes[3] = (byte)dims.Length;
        for (var d = 0; d < dims.Length; d++)
        {
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + (4 * d)), dims[d]);
        }

        data.CopyTo(bytes, 4 + (4 * dims.Length));
        return bytes;
    }

    /// <summary><paramref name="raw"/> compressed with gzip at <paramref name="level"/>.</summary>
    public static byte[] Gzip(byte[] raw, CompressionLevel level = CompressionLevel.Optimal)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, level, leaveOpen: true))
        {
            gz.Write(raw);
        }

        return ms.ToArray();
    }
}

/// <summary>
/// A read-only stream that cannot seek and has no length, as a network stream; each read returns at most
/// <paramref name="maxRead"/> bytes (short reads, as sockets give).
/// </summary>
internal sealed class ForwardOnlyStream(byte[] data, int maxRead = int.MaxValue) : Stream
{
    private readonly MemoryStream _inner = new(data, writable: false);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, maxRead));

    public override int Read(Span<byte> buffer) => _inner.Read(buffer[..Math.Min(buffer.Length, maxRead)]);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
