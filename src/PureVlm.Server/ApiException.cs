using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace PureVlm.Server;

/// <summary>
/// A request the server refuses, answered with OpenAI's error shape
/// <c>{"error": {"message", "type", "param", "code"}}</c> and <see cref="Status"/>.
/// </summary>
public sealed class ApiException(int status, string message, string? param = null, string? code = null, string type = "invalid_request_error")
    : Exception(message)
{
    /// <summary>The HTTP status code.</summary>
    public int Status { get; } = status;
    /// <summary>OpenAI's error type, e.g. <c>invalid_request_error</c>.</summary>
    public string Type { get; } = type;
    /// <summary>The request field at fault, or null.</summary>
    public string? Param { get; } = param;
    /// <summary>A machine-readable code, or null.</summary>
    public string? Code { get; } = code;

    /// <summary>A 400 about <paramref name="param"/>.</summary>
    public static ApiException BadRequest(string message, string? param = null, string? code = null) => new(400, message, param, code);

    /// <summary>Writes this error as the response (status, JSON body, and any extra headers set before).</summary>
    public Task WriteAsync(HttpResponse response)
    {
        response.StatusCode = Status;
        response.ContentType = "application/json";
        var body = new { error = new { message = Message, type = Type, param = Param, code = Code } };
        return response.WriteAsync(JsonSerializer.Serialize(body, ServerJson.Options));
    }
}
