package codec

// SQLSTATE codes the proxy itself raises (Postgres appendix A names them).
const (
	SQLStateProtocolViolation        = "08P01"
	SQLStateConnectionFailure        = "08006"
	SQLStateConnectionException      = "08000"
	SQLStateCannotConnectNow         = "57P03"
	SQLStateAdminShutdown            = "57P01"
	SQLStateQueryCanceled            = "57014"
	SQLStateInvalidPassword          = "28P01"
	SQLStateInvalidAuthorization     = "28000"
	SQLStateInvalidCatalogName       = "3D000"
	SQLStateTooManyConnections       = "53300"
	SQLStateFeatureNotSupported      = "0A000"
	SQLStateInvalidParameterValue    = "22023"
	SQLStateSyntaxError              = "42601"
	SQLStateUndefinedObject          = "42704"
	SQLStateInternalError            = "XX000"
	SQLStateIdleSessionTimeout       = "57P05"
	SQLStateProgramLimitExceeded     = "54000"
	SQLStateInFailedSQLTransaction   = "25P02"
	SQLStateActiveSQLTransaction     = "25001"
	SQLStateInvalidTransactionState  = "25000"
	SQLStateUndefinedPreparedStmt    = "26000"
	SQLStateDuplicatePreparedStmt    = "42P05"
	SQLStateInvalidCursorName        = "34000"
	SQLStateConfigurationLimitExceed = "53400"
)
