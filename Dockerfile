# Both binaries in one small image; docker-compose.yml picks the command.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/ ./cmd/authserver ./cmd/mcpserver

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
ENV TODO_MCP_DATA_DIR=/data
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/authserver"]
