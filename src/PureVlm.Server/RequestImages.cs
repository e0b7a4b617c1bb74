using PureVlm.Formats.Images;

namespace PureVlm.Server;

/// <summary>Images that come inside a request: <c>data:</c> URIs or bare base64. Never a URL or a path: the server fetches nothing.</summary>
static class RequestImages
{
    /// <summary>Decodes a <c>data:image/…;base64,…</c> URI (or, when <paramref name="allowBareBase64"/>, plain base64).</summary>
    public static RgbImage FromUri(string uri, string param, bool allowBareBase64 = false)
    {
        string base64;
        if (uri.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            int comma = uri.IndexOf(',');
            if (comma < 0 || !uri.AsSpan(0, comma).EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
                throw ApiException.BadRequest("an image data URI must be base64: data:image/png;base64,…", param, "invalid_image_url");
            base64 = uri[(comma + 1)..];
        }
        else if (!allowBareBase64 || uri.Contains("://"))
            throw ApiException.BadRequest("only data: image URIs are accepted; this server never fetches URLs (send the image as data:image/png;base64,…)", param, "invalid_image_url");
        else base64 = uri;
        byte[] bytes;
        try { bytes = Convert.FromBase64String(base64); }
        catch (FormatException) { throw ApiException.BadRequest("the image is not valid base64", param, "invalid_image"); }
        return FromBytes(bytes, param);
    }

    /// <summary>Decodes an encoded image (PNG, JPEG, BMP, GIF).</summary>
    public static RgbImage FromBytes(byte[] bytes, string param)
    {
        try { return ImageLoader.Load(bytes); }
        catch (InvalidImageException e) { throw ApiException.BadRequest($"the image could not be decoded: {e.Message.ReplaceLineEndings(" ")}", param, "invalid_image"); }
    }
}
