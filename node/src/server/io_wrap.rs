//! The part every connection wrapper of the server shares: it hands on the inner
//! stream's [`Connected`](mart_proto::tonic::transport::server::Connected) info
//! (tonic reads the peer's certificates and credentials from it) and its whole write
//! side, untouched. A wrapper writes only its read side ([`super::admitted`],
//! [`super::unix_authority`]).
//!
//! It must never add behaviour: a wrapper that needs to see what is written is not
//! one of these.

/// `wrap_io!(Type, field)`: `Connected` and `AsyncWrite` of `Type<S>` delegated to
/// its `field: S`.
macro_rules! wrap_io {
    ($ty:ident, $field:ident) => {
        impl<S: mart_proto::tonic::transport::server::Connected>
            mart_proto::tonic::transport::server::Connected for $ty<S>
        {
            type ConnectInfo = S::ConnectInfo;

            fn connect_info(&self) -> Self::ConnectInfo {
                self.$field.connect_info()
            }
        }

        impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $ty<S> {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().$field).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().$field).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.$field.is_write_vectored()
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().$field).poll_flush(cx)
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().$field).poll_shutdown(cx)
            }
        }
    };
}

pub(super) use wrap_io;
